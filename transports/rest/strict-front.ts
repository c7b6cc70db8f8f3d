/**
 * Strict HTTP/1.1 (`strictHttp`): a Node HTTP server in front of the uWS app that parses every
 * request with Node's parser (llhttp) and forwards it to the app on its private unix socket over
 * keep-alive connections. What uWS 20.30 decides in C++ without a reply (docs/rest.md, "HTTP/1.1
 * edge cases") is then answered as HTTP/1.1 asks:
 *
 *  - pipelined requests are forwarded at once, each on its own upstream connection, and their
 *    replies leave in the order the requests came (Node queues them per connection);
 *  - a request Node's parser refuses (a malformed request line, a lowercase method, both
 *    Content-Length and Transfer-Encoding, a Content-Length over 2^64) gets 400 and the connection
 *    is closed at once; request line + headers over maxHeaderBytes get 431;
 *  - a declared Content-Length over the body limit gets 413 before any body byte is read;
 *  - HTTP/1.0 requests are answered (forwarded as HTTP/1.1 with a Host header added);
 *  - headers must arrive within `headersTimeoutMs` and the whole request within
 *    `requestTimeoutMs` (Node's own timers), else 408 and close.
 *
 * Bodies stream both ways; a client that goes away aborts its upstream request, so the app sees
 * the close and the engine cancels the work. Connection and keep-alive are per hop: the upstream
 * app's `Connection: close` (a refusal whose body was not read, a drain) closes the client's
 * connection after that reply. With TLS the front terminates it (a client certificate required
 * with `verifyClient`), and `maxConnections` is counted here; one over the limit gets 503.
 */
import { Agent, type IncomingMessage, type ServerResponse, createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TlsPem } from '../ssl-config.js';
import type { ListenAddress } from '../listen-address.js';
import { REFUSED_LINGER_MS, type RestFront, listenOn, overLimitMessage, tlsServerOptions } from './front.js';
import { statusLine, statusText } from './exchange.js';

export interface StrictFrontOptions {
  /** Terminate TLS with these files; `verifyClient` requires a client certificate chaining to customCa. Absent: plain HTTP. */
  readonly tls?: { readonly pem: TlsPem; readonly verifyClient: boolean };
  /** Connections open at once; absent: no limit. */
  readonly maxConnections?: number;
  /** Largest request body in bytes: a larger declared Content-Length gets 413 before the body is read. */
  readonly bodyLimit: number;
  /** Largest request line + headers in bytes (Node's maxHeaderSize); larger gets 431. */
  readonly maxHeaderBytes: number;
  /** The request line and headers must arrive within this time, else 408. */
  readonly headersTimeoutMs: number;
  /** The whole request (headers and body) must arrive within this time, else 408. */
  readonly requestTimeoutMs: number;
  /** A kept-alive connection idle this long is closed. */
  readonly keepAliveTimeoutMs: number;
  /** Called for each request the front refuses itself (400, 408, 413, 431, 503), to count it. */
  readonly onRefused?: (status: number) => void;
}

/**
 * Upstream keep-alive connections idle this long are closed by the front, before uWS's idle
 * timer (8–12 s) could close one just as a request is sent on it.
 */
const UPSTREAM_IDLE_MS = 5000;

/** Headers of one hop, never forwarded (RFC 9110 7.6.1), plus Expect (the front answers 100-continue itself). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);

type ClientError = Error & { readonly code?: string; readonly reason?: string };

export class StrictFront implements RestFront {
  private readonly server: NetServer;
  private readonly agent: Agent;
  private readonly connections = new Set<Socket>();
  /** Connections over maxConnections: each request on one is answered 503, and it is cut after REFUSED_LINGER_MS. */
  private readonly refused = new WeakSet<Socket>();
  /** Per connection: how to abort each request forwarded on it and not yet answered. */
  private readonly pending = new WeakMap<Socket, Set<() => void>>();
  /** Requests forwarded and not yet answered to their client. */
  private open = 0;
  private idle: (() => void) | undefined;
  private draining = false;

  /** Throws when the TLS files do not form a valid TLS context. */
  constructor(private readonly backendPath: string, private readonly options: StrictFrontOptions) {
    const http = {
      maxHeaderSize: options.maxHeaderBytes,
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      // how often Node checks the two timeouts above (its default, 30 s, would stretch them)
      connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(options.headersTimeoutMs / 4))),
      noDelay: true,
      requireHostHeader: false, // checked in forward(), to answer with a JSON body
    };
    const tls = options.tls;
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.forward(req, res);
    // a TLS handshake is bounded like the headers that follow it
    const server = tls
      ? createHttpsServer({ ...http, ...tlsServerOptions(tls.pem, tls.verifyClient), handshakeTimeout: options.headersTimeoutMs }, handler)
      : createHttpServer(http, handler);
    server.keepAliveTimeout = options.keepAliveTimeoutMs;
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.forward(req, res, true));
    server.on('clientError', (err: ClientError, socket: Duplex) => this.clientError(err, socket));
    server.on('tlsClientError', () => {}); // refused handshakes are the client's problem
    // counted once HTTP can be spoken on it (after the TLS handshake with TLS)
    server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => this.accept(socket));
    this.server = server;
    this.agent = new Agent({ keepAlive: true, timeout: UPSTREAM_IDLE_MS, scheduling: 'lifo' });
  }

  listen(at: ListenAddress): Promise<number> {
    return listenOn(this.server, at);
  }

  /**
   * Stops accepting. Open connections stay (as with uWS alone): a request on one is answered 503
   * with Connection: close, and replies in flight are completed with Connection: close.
   */
  stopAccepting(): void {
    this.draining = true;
    // net.Server's close: http.Server's would also close idle keep-alive connections at once,
    // racing a request a client is sending on one (it would get a reset instead of a 503)
    NetServer.prototype.close.call(this.server);
  }

  /** Resolves when every forwarded request has been answered to its client (or its client went away). */
  settled(): Promise<void> {
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const before = this.idle;
      this.idle = () => {
        before?.();
        resolve();
      };
    });
  }

  destroyAll(): void {
    for (const s of this.connections) s.destroy();
    this.connections.clear();
    this.agent.destroy();
  }

  private accept(socket: Socket): void {
    const max = this.options.maxConnections;
    if (max !== undefined && this.connections.size >= max) {
      this.refused.add(socket);
      const cut = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
      socket.on('close', () => clearTimeout(cut));
      return;
    }
    this.connections.add(socket);
    const pending = new Set<() => void>();
    this.pending.set(socket, pending);
    socket.on('close', () => {
      this.connections.delete(socket);
      // pipelined requests whose replies were queued behind others get no 'close' of their own
      for (const abort of pending) abort();
    });
  }

  private forward(req: IncomingMessage, res: ServerResponse, expectsContinue = false): void {
    if (this.refused.has(req.socket)) return this.refuse(res, 503, overLimitMessage(this.options.maxConnections!));
    if (this.draining) return this.refuse(res, 503, JSON.stringify({ error_msg: 'the RESTful server is shutting down' }));
    if (req.headers.host === undefined && req.httpVersion !== '1.0') {
      return this.refuse(res, 400, JSON.stringify({ error_msg: 'the request is not valid HTTP/1.1: it has no Host header' }));
    }
    const declared = req.headers['content-length'];
    const limit = this.options.bodyLimit;
    // llhttp accepts only digits here; Number() of up to 20 digits loses precision but not the comparison
    if (declared !== undefined && Number(declared) > limit) {
      return this.refuse(res, 413, JSON.stringify({ error_msg: `the request body is ${declared} bytes, more than the limit of ${limit} bytes (maxMsgMbSize)` }));
    }
    if (expectsContinue) res.writeContinue();

    this.open++;
    let answered = false;
    const pending = this.pending.get(req.socket);
    const done = (): void => {
      if (answered) return;
      answered = true;
      pending?.delete(abort);
      if (--this.open === 0) {
        const idle = this.idle;
        this.idle = undefined;
        idle?.();
      }
    };
    const upstream = httpRequest({
      agent: this.agent,
      socketPath: this.backendPath,
      method: req.method,
      path: req.url,
      headers: upstreamHeaders(req),
    });
    upstream.on('response', (reply) => {
      const close = this.draining || /\bclose\b/i.test(reply.headers.connection ?? '');
      // the app's headers as it wrote them, but Date (Node writes its own)
      const headers = passThrough(reply.rawHeaders, 'date');
      if (close) headers.push('Connection', 'close');
      res.writeHead(reply.statusCode ?? 502, reply.statusMessage, headers);
      reply.pipe(res);
      reply.on('error', () => res.destroy());
    });
    upstream.on('error', (err: Error) => {
      if (res.headersSent) {
        res.destroy(); // cut off mid-reply: the client must not take a partial body for a whole one
      } else if (!res.writableEnded && !res.destroyed) {
        // the app closed its connection without a reply: it does so for a body that stalls
        // (under 16 KiB in 10 s), and when it is stopping
        const status = req.complete ? 502 : 408;
        const message =
          status === 408
            ? 'the request body stopped arriving before it was complete'
            : `the RESTful server closed the request without a reply (${err.message})`;
        this.refuse(res, status, JSON.stringify({ error_msg: message }));
      }
    });
    // the client went away first (or its connection was cut): abort the upstream request, so that
    // the app sees the close and the engine cancels the work
    const abort = (): void => {
      if (!res.writableFinished) upstream.destroy();
      done();
    };
    pending?.add(abort);
    res.on('close', abort);
    req.pipe(upstream);
  }

  /** A reply of the front's own, closing the connection (the request's body, if any, is not read). */
  private refuse(res: ServerResponse, status: number, body: string): void {
    this.options.onRefused?.(status);
    res.writeHead(status, statusText(status), ['Content-Type', 'application/json', 'Content-Length', String(Buffer.byteLength(body)), 'Connection', 'close']);
    res.end(body);
  }

  /**
   * A request Node's parser refused, or one that did not arrive in time: a reply and close, unless
   * a reply to an earlier request on the connection is pending (an answer now would be taken for
   * that one's); then the connection is only closed.
   */
  private clientError(err: ClientError, socket: Duplex): void {
    const pending = (socket as Duplex & { _httpMessage?: unknown })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || pending) {
      socket.destroy();
      return;
    }
    let status = 400;
    let message = `the request is not valid HTTP/1.1: ${err.reason ?? err.message}`;
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      message = `the request line and headers take more than the limit of ${this.options.maxHeaderBytes} bytes`;
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      message = `the request did not arrive within ${this.options.headersTimeoutMs} ms (headers) or ${this.options.requestTimeoutMs} ms (headers and body)`;
    }
    this.options.onRefused?.(status);
    const body = JSON.stringify({ error_msg: message });
    socket.end(
      `HTTP/1.1 ${statusLine(status)}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    // what the client still sends is read and dropped for a moment, so that the reply is not lost to a reset
    socket.resume();
    const cut = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
    socket.on('close', () => clearTimeout(cut));
  }
}

/**
 * The request's raw headers for the upstream hop, names as the client wrote them: hop-by-hop ones
 * dropped, a chunked body kept chunked (it arrives de-chunked; a GET's too), a Host added where an
 * HTTP/1.0 client sent none (uWS closes a request without one).
 */
function upstreamHeaders(req: IncomingMessage): string[] {
  const out = passThrough(req.rawHeaders, '');
  if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] === undefined) out.push('Transfer-Encoding', 'chunked');
  if (req.headers.host === undefined) out.push('Host', 'localhost');
  return out;
}

/** Raw headers (name, value, name, value...) without the hop-by-hop ones and `also`. */
function passThrough(raw: readonly string[], also: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(name) && name !== also) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}
