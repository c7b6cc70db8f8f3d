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
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Unknown'}`;
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

  send(status: number, contentType: string, body: string | Uint8Array, options: SendOptions = {}): void {
    if (!this.open) return;
    this.ended = true;
    const close = options.close === true || this.forceClose();
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status)).writeHeader('Content-Type', contentType);
      for (const [k, v] of Object.entries(options.headers ?? {})) this.res.writeHeader(k, v);
      this.res.end(body, close);
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
