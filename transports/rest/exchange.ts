/**
 * One HTTP request/response on a uWS HttpResponse, enforcing uWS's rules: `onAborted` is
 * attached at once (so an async reply is legal), nothing is written after the client went
 * away, every write happens inside `cork`, and the response is ended exactly once.
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

  /** `onFinish` runs once, when the response was sent or the client went away. */
  constructor(
    readonly res: HttpResponse,
    private readonly onFinish: (ex: Exchange) => void,
    private readonly forceClose: () => boolean,
  ) {
    res.onAborted(() => {
      this.aborted = true;
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
