/**
 * One HTTP request/response on a uWS HttpResponse, enforcing uWS's rules: `onAborted` is
 * attached at once (so an async reply is legal), nothing is written after the client went
 * away, every write happens inside `cork`, and the response is ended exactly once.
 *
 * A reply is sent whole (`send`) or streamed (`stream`: Server-Sent Events), chunk by chunk
 * with back-pressure: the next chunk is pulled only once uWS took the previous one without
 * buffering it, or, when it had to buffer (the client reads slowly), once the socket is
 * writable again (`onWritable`). A client that stops reading therefore stops the chunks being
 * made; the server holds at most one chunk beyond what the socket takes.
 */
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';

export const JSON_TYPE = 'application/json';
export const MSGPACK_TYPE = 'application/msgpack';

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The reason phrase of a status this server sends ('Unknown' for others). */
export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Unknown';
}

export function statusLine(status: number): string {
  return `${status} ${statusText(status)}`;
}

/**
 * A body made while it is sent, for bodies written into a buffer that the next reply reuses
 * (reply-writer.ts): `encode` runs inside `send`, and uWS has sent or copied the bytes before
 * `end` returns. Never called when the client went away first.
 */
export interface DeferredBody {
  encode(): Uint8Array;
}

export type Body = string | Uint8Array | DeferredBody;

/** A complete answer, as route handlers (route-table.ts) return it. */
export interface Reply {
  readonly status: number;
  readonly contentType: string;
  /** A DeferredBody is written when sent (JSON replies: into the thread's ReplyWriter). */
  readonly body: Body;
  /** Further response headers (KServe v2's binary extension sets Inference-Header-Content-Length). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * A reply whose body is made while it is sent (Server-Sent Events). Its status and headers
 * leave with the first chunk. `chunks` must not be empty, and must not throw (a throw is a
 * bug: the connection is then cut, so the client cannot take the partial body for a whole
 * one); `return()` is called when the client goes away before the end.
 */
export interface StreamedReply {
  readonly status: number;
  readonly contentType: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly chunks: AsyncIterator<string>;
}

export function isStreamedReply(reply: Reply | StreamedReply): reply is StreamedReply {
  return 'chunks' in reply;
}

export interface SendOptions {
  /** Close the connection after this response (the body was not read, or the server drains). */
  readonly close?: boolean;
  readonly headers?: Readonly<Record<string, string>>;
}

export class Exchange {
  private aborted = false;
  private ended = false;
  private finished = false;
  private readonly finishHooks: (() => void)[] = [];
  /** While a stream waits for the socket to become writable: resumes it (also when the client went away). */
  private wake: (() => void) | undefined;

  /** `onFinish` runs once, when the response was sent or the client went away. */
  constructor(
    readonly res: HttpResponse,
    private readonly onFinish: (ex: Exchange) => void,
    private readonly forceClose: () => boolean,
  ) {
    res.onAborted(() => {
      this.aborted = true;
      this.wake?.();
      this.finish();
    });
  }

  /** False once the response was sent or the client went away: stop all work for it. */
  get open(): boolean {
    return !this.aborted && !this.ended;
  }

  send(status: number, contentType: string, body: Body, options: SendOptions = {}): void {
    if (!this.open) return;
    this.ended = true;
    const close = options.close === true || this.forceClose();
    let bytes: string | Uint8Array;
    try {
      bytes = typeof body === 'string' || body instanceof Uint8Array ? body : body.encode();
    } catch (err) {
      // A bug in an encoder: the client still gets an answer.
      status = 500;
      contentType = JSON_TYPE;
      bytes = JSON.stringify({ error_msg: `internal error: the reply could not be encoded: ${(err as Error)?.message ?? String(err)}` });
    }
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status)).writeHeader('Content-Type', contentType);
      for (const [k, v] of Object.entries(options.headers ?? {})) this.res.writeHeader(k, v);
      this.res.end(bytes, close);
    });
    this.finish();
  }

  /**
   * Streams a reply (see StreamedReply and the header); resolves when it ended or the client
   * went away (then `reply.chunks` was returned). `log` hears of a chunk source that threw.
   */
  async stream(reply: StreamedReply, options: SendOptions, log: (line: string) => void): Promise<void> {
    const chunks = reply.chunks;
    let headersSent = false;
    let wrote = true;
    if (!this.open) return closeChunks(chunks, log);
    this.ended = true;
    try {
      for (;;) {
        if (!wrote) await this.writable();
        if (this.aborted) break;
        const r = await chunks.next();
        if (this.aborted) break;
        if (r.done === true) {
          this.res.cork(() => {
            if (!headersSent) this.writeHead(reply.status, reply.contentType, { ...reply.headers, ...options.headers });
            this.res.end(undefined, options.close === true || this.forceClose());
          });
          this.finish();
          return;
        }
        this.res.cork(() => {
          if (!headersSent) this.writeHead(reply.status, reply.contentType, { ...reply.headers, ...options.headers });
          headersSent = true;
          wrote = this.res.write(r.value);
        });
      }
    } catch (err) {
      log(`REST: a streamed reply failed: ${(err as Error)?.stack ?? String(err)}`);
      if (!this.aborted) {
        this.res.close(); // onAborted runs: the client sees a cut connection, not an end
        return;
      }
    }
    return closeChunks(chunks, log);
  }

  private writeHead(status: number, contentType: string, headers: Readonly<Record<string, string>>): void {
    this.res.writeStatus(statusLine(status)).writeHeader('Content-Type', contentType);
    for (const [k, v] of Object.entries(headers)) this.res.writeHeader(k, v);
  }

  /** Resolves when uWS reports the socket writable again, or the client went away. */
  private writable(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
      this.res.onWritable(() => {
        done();
        return true;
      });
    });
  }

  /** Runs `hook` once the response was sent or the client went away (at once if that happened already). */
  onFinished(hook: () => void): void {
    if (this.finished) hook();
    else this.finishHooks.push(hook);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const hook of this.finishHooks.splice(0)) hook();
    this.onFinish(this);
  }
}

/** Stops a streamed reply's chunks (the client went away); never rejects. */
async function closeChunks(chunks: AsyncIterator<string>, log: (line: string) => void): Promise<void> {
  try {
    await chunks.return?.();
  } catch (err) {
    log(`REST: stopping a streamed reply failed: ${(err as Error)?.stack ?? String(err)}`);
  }
}
