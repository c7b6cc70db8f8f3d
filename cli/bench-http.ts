/**
 * The REST client of `actorserve bench`: one keep-alive HTTP/1.1 connection on a plain
 * node:net socket, sending a request whose bytes (request line, headers, body) were built once,
 * and reading the reply with a minimal parser (status line, Content-Length or chunked
 * bodies, Connection: close). One request at a time per connection, no pipelining.
 *
 * Why not node:http: its ClientRequest/IncomingMessage machinery costs several times more CPU
 * per request than the servers under test spend (measured on the 2-core dev machine against a
 * bare uWS responder at 64 connections: about 16 k req/s through node:http's keep-alive Agent,
 * about 43 k req/s with this client), so the load generator, not the server, set the limit.
 * `--http-client node` keeps the node:http client as a cross-check.
 */
import net from 'node:net';
import { type Failure, type RestEndpoint, restFailure, socketFailure } from './bench-failure.js';

const CRLF2 = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;
const ERROR_MSG = Buffer.from('error_msg');

/** The bytes of one request: request line, headers, blank line, body. */
export function encodeRequest(endpoint: RestEndpoint, path: string, headers: Record<string, string>, body: Uint8Array): Buffer {
  const host = endpoint.socketPath ? 'localhost' : endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
  let head = `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.byteLength}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += '\r\n';
  const h = Buffer.from(head, 'latin1');
  const out = Buffer.allocUnsafe(h.length + body.byteLength);
  h.copy(out, 0);
  out.set(body, h.length);
  return out;
}

type Phase = 'idle' | 'head' | 'body' | 'chunked' | 'until-close';

export class HttpConnection {
  private socket: net.Socket | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private phase: Phase = 'idle';
  private status = 0;
  private remaining = 0;
  private closeAfter = false;
  private body: Buffer[] = [];
  private bodyBytes = 0;
  private gotBytes = false;
  private reused = false;
  private resolve: ((f: Failure | undefined) => void) | undefined;

  constructor(
    private readonly endpoint: RestEndpoint,
    private readonly request: Buffer,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Sends the request (or `request`, other bytes on the same connection: the soak mixes kinds
   * of requests on one connection) and resolves with undefined (success) or the failure.
   */
  send(request: Buffer = this.request): Promise<Failure | undefined> {
    return new Promise((resolve) => this.start(resolve, true, request));
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private start(resolve: (f: Failure | undefined) => void, mayRetry: boolean, request: Buffer): void {
    this.resolve = (f) => {
      // A reused keep-alive connection that the server had already closed: retry once on a new one.
      if (f?.connection && mayRetry && this.reused && !this.gotBytes) {
        this.start(resolve, false, request);
        return;
      }
      resolve(f);
    };
    this.phase = 'head';
    this.gotBytes = false;
    this.body = [];
    this.bodyBytes = 0;
    this.reused = this.socket !== undefined;
    const socket = this.socket ?? this.connect();
    socket.write(request);
  }

  private connect(): net.Socket {
    const e = this.endpoint;
    const socket = e.socketPath ? net.connect({ path: e.socketPath }) : net.connect({ host: e.host, port: e.port });
    socket.setNoDelay(true);
    socket.setTimeout(this.timeoutMs);
    socket.on('data', (d: Buffer) => this.onData(socket, d));
    socket.on('timeout', () => this.fail(socket, { kind: 'timeout', message: `no reply within ${this.timeoutMs} ms` }));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(socket, socketFailure(err)));
    socket.on('close', () => {
      if (this.phase === 'until-close' && this.socket === socket) {
        this.phase = 'idle';
        this.socket = undefined;
        this.done(this.finish());
        return;
      }
      this.fail(socket, { kind: 'connection reset', message: 'the server closed the connection before replying', connection: true });
    });
    this.socket = socket;
    return socket;
  }

  private fail(socket: net.Socket, f: Failure): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    socket.destroy();
    if (this.phase === 'idle') return;
    this.phase = 'idle';
    this.done(f);
  }

  private done(f: Failure | undefined): void {
    const r = this.resolve;
    this.resolve = undefined;
    r?.(f);
  }

  private onData(socket: net.Socket, d: Buffer): void {
    if (this.phase === 'idle') {
      this.fail(socket, { kind: 'bad HTTP reply', message: 'the server sent bytes nobody asked for' });
      return;
    }
    this.gotBytes = true;
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      if (this.phase === 'head') {
        const end = this.buf.indexOf(CRLF2);
        if (end < 0) {
          if (this.buf.length > MAX_HEAD) this.fail(socket, { kind: 'bad HTTP reply', message: 'reply headers over 64 KiB' });
          return;
        }
        if (!this.readHead(this.buf.toString('latin1', 0, end))) {
          this.fail(socket, { kind: 'bad HTTP reply', message: `cannot parse the reply head: ${JSON.stringify(this.buf.toString('latin1', 0, Math.min(end, 80)))}` });
          return;
        }
        this.buf = this.buf.subarray(end + 4);
        if (this.status >= 100 && this.status < 200) {
          this.phase = 'head'; // an interim reply: the real one follows
          continue;
        }
      }
      if (this.phase === 'body') {
        const take = Math.min(this.remaining, this.buf.length);
        if (take > 0) this.keep(this.buf.subarray(0, take));
        this.buf = this.buf.subarray(take);
        this.remaining -= take;
        if (this.remaining > 0) return;
        this.complete(socket);
        return;
      }
      if (this.phase === 'chunked') {
        if (this.remaining > 0) {
          const take = Math.min(this.remaining, this.buf.length);
          this.keep(this.buf.subarray(0, take));
          this.buf = this.buf.subarray(take);
          this.remaining -= take;
          if (this.remaining > 0) return;
          continue;
        }
        // at a chunk header: [CRLF after previous chunk] size[;ext] CRLF
        if (this.buf.length < 3) return;
        const start = this.buf[0] === 0x0d && this.buf[1] === 0x0a ? 2 : 0;
        const eol = this.buf.indexOf('\r\n', start);
        if (eol < 0) return;
        const size = parseInt(this.buf.toString('latin1', start, eol), 16);
        if (!Number.isFinite(size) || size < 0) {
          this.fail(socket, { kind: 'bad HTTP reply', message: 'bad chunk size' });
          return;
        }
        if (size === 0) {
          // last chunk: skip (empty) trailers up to the blank line
          const trailerEnd = this.buf.indexOf(CRLF2, eol);
          if (trailerEnd < 0) return;
          this.buf = this.buf.subarray(trailerEnd + 4);
          this.complete(socket);
          return;
        }
        this.buf = this.buf.subarray(eol + 2);
        this.remaining = size;
        continue;
      }
      if (this.phase === 'until-close') {
        if (this.buf.length) this.keep(this.buf);
        this.buf = Buffer.alloc(0);
        return;
      }
      return;
    }
  }

  /** Keeps body bytes: all of a 200 (to look for error_msg), the first 300 of an error reply. */
  private keep(b: Buffer): void {
    if (this.status !== 200 && this.bodyBytes >= 300) return;
    this.body.push(b);
    this.bodyBytes += b.length;
  }

  private readHead(head: string): boolean {
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (!m) return false;
    this.status = Number(m[1]);
    let length = -1;
    let chunked = false;
    this.closeAfter = /^HTTP\/1\.0/.test(head);
    const lines = head.split('\r\n');
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = value.includes('chunked');
      else if (name === 'connection') this.closeAfter = value.includes('close') ? true : value.includes('keep-alive') ? false : this.closeAfter;
    }
    if (this.status >= 100 && this.status < 200) return true;
    if (chunked) {
      this.phase = 'chunked';
      this.remaining = 0;
    } else if (length >= 0 && Number.isFinite(length)) {
      this.phase = 'body';
      this.remaining = length;
    } else if (this.status === 204 || this.status === 304) {
      this.phase = 'body';
      this.remaining = 0;
    } else {
      this.phase = 'until-close';
      this.closeAfter = true;
    }
    return true;
  }

  private finish(): Failure | undefined {
    const body = this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body);
    if (this.status === 200) return body.includes(ERROR_MSG) ? restFailure(200, body) : undefined;
    return restFailure(this.status, body);
  }

  private complete(socket: net.Socket): void {
    this.phase = 'idle';
    const f = this.finish();
    if (this.closeAfter || this.buf.length > 0) {
      this.socket = undefined;
      socket.destroy();
      this.buf = Buffer.alloc(0);
    }
    this.done(f);
  }
}
