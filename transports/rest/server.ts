/**
 * The RESTful transport on uWebSockets.js: MindSpore Serving's REST API
 * (`POST /model/<servable>[/version/<n>]:<method>`, JSON or msgpack), KServe v2's REST API
 * (`/v2/...`, kserve-routes.ts), plus `GET /healthz`, `GET /readyz` and `GET /metrics`. It
 * only decodes, calls the engine and encodes; model work runs in the engine's device actors,
 * never on this thread.
 *
 * This file is the HTTP framing: listening, TLS, header and body limits, the deadline and
 * request-id headers, draining. What is served is the route table's (route-table.ts), filled
 * by the protocol modules (mindspore-routes.ts, metadata-routes.ts, probe-routes.ts,
 * kserve-routes.ts).
 *
 *   const rest = await startRestfulServer(engine, '127.0.0.1:1500', { maxMsgMbSize: 100 });
 *   ...
 *   await rest.close();
 */
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import { Cancellation } from '../../engine/cancellation.js';
import { ServingError } from '../../engine/errors.js';
import type { SSLConfig } from '../ssl-config.js';
import type { ServingEngine } from '../../facade/engine.js';
import { type ListenAddress, claimSocketPath, configuredAddress, formatListenAddress, parseListenAddress, restrictSocketFile } from '../listen-address.js';
import { requestIdOf } from '../request-id.js';
import { readBody } from './body-reader.js';
import { errorReply } from './codec.js';
import { Exchange, JSON_TYPE, MSGPACK_TYPE, type Reply, type StreamedReply, isStreamedReply } from './exchange.js';
import { encodeJsonError } from './json-codec.js';
import { CONTROL_ROUTES } from './control-routes.js';
import { KSERVE_ROUTES } from './kserve-routes.js';
import { METADATA_ROUTES } from './metadata-routes.js';
import { mindsporeRoutes } from './mindspore-routes.js';
import { type RestServerOptions, type RestSettings, restSettings } from './options.js';
import { PROBE_ROUTES } from './probe-routes.js';
import { type BodyRoute, type Route, RouteTable } from './route-table.js';
import { Front, type RestFront, TLS12_CIPHERS } from './front.js';
import { StrictFront } from './strict-front.js';

export type { SSLConfig, RestServerOptions };

export interface RestServer {
  /** The address served, with the port actually bound: `127.0.0.1:1500`, `[::1]:1500`, `unix:/path`. */
  readonly address: string;
  /** The TCP port bound (0 for a unix socket). */
  readonly port: number;
  /**
   * Stops accepting, lets requests in flight finish for up to `timeoutMs` (a drain passes its
   * own; default: the closeTimeoutMs option), then closes every connection.
   */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * uWS's listen options (uWebSockets.js `LIBUS_LISTEN_DEFAULT` / `LIBUS_LISTEN_EXCLUSIVE_PORT`).
 * The default binds with SO_REUSEPORT: a second server on the same port would bind too and the
 * kernel would split connections between them, so the REST server binds exclusively unless the
 * `reusePort` option asks for sharing.
 */
const LISTEN_SHARED_PORT = 0;
/** uWS 20.30's idle timeout (HTTP_IDLE_TIMEOUT_S; its timers tick every 4 s, so 8–12 s in effect). */
const UWS_IDLE_TIMEOUT_MS = 10_000;
const LISTEN_EXCLUSIVE_PORT = 1;

/**
 * uWS apps have `close()` (closes the listen sockets and every connection) and take listen
 * options together with a host (`listen(host, port, options, cb)`); its typings omit both.
 */
type App = TemplatedApp & {
  close(): void;
  listen(host: string, port: number, options: number, cb: (listenSocket: us_listen_socket | false) => void): TemplatedApp;
};

/**
 * Serves MindSpore's REST API and the probes on `address`. `extraRoutes` are served besides
 * them: a further protocol's routes (route-table.ts says how to declare them).
 */
export async function startRestfulServer(
  engine: ServingEngine,
  address: string,
  options: RestServerOptions = {},
  extraRoutes: readonly Route<unknown>[] = [],
): Promise<RestServer> {
  const listen = parseListenAddress(address, 'RESTful server');
  const settings = restSettings(options);
  const server = new UwsRestServer(engine, listen, settings, extraRoutes);
  await server.start();
  return server;
}

class UwsRestServer implements RestServer {
  address = '';
  port = 0;
  private readonly app: App;
  private readonly routes: RouteTable;
  private listenSocket: us_listen_socket | undefined;
  private readonly inflight = new Set<Exchange>();
  private draining = false;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private ownsSocketFile = false;
  /**
   * With `verifyClient` or `maxConnections`: the Node server in front (front.ts); with `strictHttp`:
   * the Node HTTP server in front (strict-front.ts). And the private folder of the app's socket.
   */
  private front: RestFront | undefined;
  private privateDir: string | undefined;

  constructor(
    private readonly engine: ServingEngine,
    private readonly listen: ListenAddress,
    private readonly settings: RestSettings,
    extraRoutes: readonly Route<unknown>[],
  ) {
    this.routes = new RouteTable([
      ...mindsporeRoutes({ parseInstances: settings.parseInstances }),
      ...METADATA_ROUTES,
      ...PROBE_ROUTES,
      ...KSERVE_ROUTES,
      ...(settings.controlApi ? CONTROL_ROUTES : []),
      ...extraRoutes,
    ]);
    const ssl = settings.ssl;
    const strict = settings.strictHttp;
    if (ssl?.verifyClient || settings.maxConnections !== undefined || strict) {
      this.privateDir = mkdtempSync(join(tmpdir(), 'actorserve-rest-'));
      try {
        this.front = this.makeFront(join(this.privateDir, 'app.sock'));
      } catch (err) {
        rmSync(this.privateDir, { recursive: true, force: true });
        throw new ServingError(
          'E_INVALID_ARGUMENT',
          `RESTful server sslConfig: the certificate, private key or CA could not be loaded (${(err as Error).message}); check they are PEM files and that the key matches the certificate`,
        );
      }
    }
    // uWS terminates TLS itself only with no front that does (mutual TLS and strict mode terminate in Node)
    this.app = (ssl && !ssl.verifyClient && !strict ? sslApp(ssl) : uWS.App()) as App;
    this.app.any('/*', (res, req) => this.handle(res, req));
  }

  private makeFront(backendPath: string): RestFront {
    const { ssl, pem, maxConnections } = this.settings;
    if (this.settings.strictHttp) {
      // headers within uWS's idle timeout (or bodyTimeoutMs when shorter), then the body within bodyTimeoutMs
      const headersTimeoutMs = Math.min(UWS_IDLE_TIMEOUT_MS, this.settings.bodyTimeoutMs);
      return new StrictFront(backendPath, {
        tls: ssl && pem ? { pem, verifyClient: ssl.verifyClient === true } : undefined,
        maxConnections,
        bodyLimit: this.settings.bodyLimit,
        maxHeaderBytes: this.settings.maxHeaderBytes,
        headersTimeoutMs,
        requestTimeoutMs: headersTimeoutMs + this.settings.bodyTimeoutMs,
        keepAliveTimeoutMs: UWS_IDLE_TIMEOUT_MS,
        onRefused: (status) => this.engine.countRefused('rest', status === 400 ? 'E_INVALID_ARGUMENT' : `HTTP_${status}`),
      });
    }
    return new Front(backendPath, {
      // checked: verifyClient comes with a customCa
      mutualTls: ssl?.verifyClient && pem ? { ...pem, customCa: pem.customCa! } : undefined,
      maxConnections,
      passesTls: ssl !== undefined && !ssl.verifyClient,
    });
  }

  async start(): Promise<void> {
    const l = this.listen;
    const where = configuredAddress(l);
    const failed = (detail: string): never => {
      this.release();
      throw new ServingError('E_UNAVAILABLE', `RESTful server could not bind to ${where} (${detail})`);
    };
    if (l.kind === 'unix') await claimSocketPath(l.path, 'RESTful server');
    // with a front, the uWS app listens on a private unix socket and the front on the address
    const appAt: ListenAddress = this.front ? { kind: 'unix', path: join(this.privateDir!, 'app.sock') } : l;
    const socket = await new Promise<us_listen_socket | false>((resolve) => {
      if (appAt.kind === 'unix') this.app.listen_unix((s) => resolve(s), appAt.path);
      else this.app.listen(appAt.host, appAt.port, this.settings.reusePort ? LISTEN_SHARED_PORT : LISTEN_EXCLUSIVE_PORT, (s) => resolve(s));
    });
    if (!socket) return failed(`address in use, not local, or not permitted${this.settings.reusePort ? '; with reusePort, every server on the port must set it' : ''}`);
    this.listenSocket = socket;
    if (this.front) {
      try {
        this.port = await this.front.listen(l);
      } catch (err) {
        return failed((err as Error).message);
      }
    } else {
      this.port = l.kind === 'unix' ? 0 : uWS.us_socket_local_port(socket);
    }
    this.ownsSocketFile = l.kind === 'unix';
    if (l.kind === 'unix') restrictSocketFile(l.path);
    this.address = formatListenAddress(l, this.port);
    this.engine.log(
      `RESTful server listening on ${this.settings.ssl ? 'https' : 'http'}://${this.address}${this.settings.ssl?.verifyClient ? ' (client certificates required)' : ''}${this.settings.maxConnections !== undefined ? ` (at most ${this.settings.maxConnections} connections)` : ''}${this.settings.strictHttp ? ' (strict HTTP/1.1)' : ''}`,
    );
  }

  close(timeoutMs = this.settings.closeTimeoutMs): Promise<void> {
    this.closing ??= this.drainAndClose(timeoutMs);
    return this.closing;
  }

  private async drainAndClose(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    this.draining = true;
    this.front?.stopAccepting();
    if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
    if (this.inflight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
    }
    // the strict front may still be passing the last replies on to their clients
    const left = deadline - performance.now();
    if (this.front?.settled && left > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.front.settled(), new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
    this.release();
  }

  /** Closes every connection and listener, and removes the files this server made. */
  private release(): void {
    if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
    this.app.close(); // closes idle keep-alive connections and cuts off anything left
    this.front?.stopAccepting();
    this.front?.destroyAll();
    if (this.privateDir) rmSync(this.privateDir, { recursive: true, force: true });
    if (this.ownsSocketFile && this.listen.kind === 'unix') {
      try {
        unlinkSync(this.listen.path);
      } catch {
        // already gone
      }
    }
  }

  private handle(res: HttpResponse, req: HttpRequest): void {
    const ex = new Exchange(
      res,
      (done) => {
        this.inflight.delete(done);
        if (this.draining && this.inflight.size === 0) this.drained?.();
      },
      () => this.draining,
    );
    this.inflight.add(ex);
    try {
      this.dispatch(ex, req);
    } catch (err) {
      // nothing may escape into uWS; a throw here is a bug, answered as one
      this.engine.log(`REST handler error: ${(err as Error)?.stack ?? String(err)}`);
      ex.send(500, JSON_TYPE, encodeJsonError(`internal error: ${(err as Error)?.message ?? String(err)}`), { close: true });
    }
  }

  private dispatch(ex: Exchange, req: HttpRequest): void {
    // HttpRequest is only valid until the handler returns: read everything needed now
    const method = req.getMethod();
    const url = req.getUrl();
    const contentLength = req.getHeader('content-length');
    const hasBody = (contentLength !== '' && contentLength !== '0') || req.getHeader('transfer-encoding') !== '';
    const json = (status: number, message: string, extra: { close?: boolean; headers?: Record<string, string> } = {}): void =>
      ex.send(status, JSON_TYPE, encodeJsonError(message), { close: hasBody, ...extra });

    if (this.draining) return json(503, 'the RESTful server is shutting down', { close: true });
    let headerBytes = method.length + url.length + 12;
    req.forEach((k, v) => {
      headerBytes += k.length + v.length + 4;
    });
    if (headerBytes > this.settings.maxHeaderBytes) {
      return json(431, `the request line and headers take ${headerBytes} bytes, more than the limit of ${this.settings.maxHeaderBytes}`, { close: true });
    }

    const found = this.routes.match(method, url);
    if (found.kind === 'refused') {
      const extra = found.allow ? { headers: { Allow: found.allow } } : {};
      if (found.body !== undefined) return ex.send(found.status, JSON_TYPE, found.body, { close: hasBody, ...extra });
      return json(found.status, found.message, extra);
    }
    const { route, params } = found;
    if (route.codecs === undefined) {
      const out = route.answer(this.engine, params);
      return ex.send(out.status, out.contentType, out.body, out.headers ? { close: hasBody, headers: out.headers } : { close: hasBody });
    }
    this.readAndAnswer(ex, req, route, params, contentLength, hasBody);
  }

  /** A BodyRoute: codecs from the headers, the deadline and length headers checked, the body read, then the handler. */
  private readAndAnswer(ex: Exchange, req: HttpRequest, route: BodyRoute<unknown>, params: unknown, contentLength: string, hasBody: boolean): void {
    const decoder = route.codecs.decoderFor(req.getHeader('content-type'));
    const encoder = route.codecs.encoderFor(req.getHeader('accept'));
    // A refusal before the body reaches the route: counted like any refused request.
    const reply = (status: number, message: string, close = false): void => {
      this.engine.countRefused('rest', status === 400 ? 'E_INVALID_ARGUMENT' : `HTTP_${status}`);
      const e = errorReply(status, message, encoder);
      ex.send(e.status, e.contentType, e.body, { close });
    };
    const requestId = requestIdOf(req.getHeader('x-request-id'));
    const headers = route.headers === undefined ? NO_HEADERS : copyHeaders(req, route.headers);
    const deadlineText = req.getHeader('x-deadline-ms');
    let deadlineMs: number | undefined;
    if (deadlineText !== '') {
      deadlineMs = Number(deadlineText);
      if (!(deadlineMs > 0) || !Number.isFinite(deadlineMs)) {
        return reply(400, `the X-Deadline-Ms header must be a positive number of milliseconds, got ${JSON.stringify(deadlineText.slice(0, 40))}`, hasBody);
      }
    }
    let declaredLength: number | undefined;
    if (contentLength !== '') {
      declaredLength = /^\d{1,16}$/.test(contentLength) ? Number(contentLength) : NaN;
      if (Number.isNaN(declaredLength)) return reply(400, 'the Content-Length header is not a number', true);
    }
    const limit = this.settings.bodyLimit;
    readBody(ex, { limit, declaredLength, timeoutMs: this.settings.bodyTimeoutMs }, {
      onBody: (body) => {
        // A client that goes away cancels its request (after a reply this finds nothing to do).
        const signal = new Cancellation();
        ex.onFinished(() => signal.cancel());
        route.answer(this.engine, { params, body, decoder, encoder, requestId, deadlineMs, signal, headers }).then(
          (out: Reply | StreamedReply) => {
            if (isStreamedReply(out)) {
              void ex.stream(out, { headers: { 'X-Request-Id': requestId } }, this.engine.log);
              return;
            }
            ex.send(out.status, out.contentType, out.body, { headers: out.headers ? { ...out.headers, 'X-Request-Id': requestId } : { 'X-Request-Id': requestId } });
          },
          (err: unknown) => {
            const e = errorReply(500, `internal error: ${(err as Error)?.message ?? String(err)}`, encoder);
            ex.send(e.status, e.contentType, e.body, { close: false });
          },
        );
      },
      onTooLarge: (bytes) =>
        reply(
          413,
          `the request body${declaredLength === undefined ? ' passed' : ' is'} ${bytes} bytes, more than the limit of ${limit} bytes (maxMsgMbSize)`,
          true,
        ),
      onTimeout: (received) =>
        reply(408, `the request body did not arrive within ${this.settings.bodyTimeoutMs} ms (${received} bytes received)`, true),
    });
  }
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

function copyHeaders(req: HttpRequest, names: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of names) headers[name] = req.getHeader(name);
  return headers;
}

function sslApp(ssl: SSLConfig): TemplatedApp {
  try {
    return uWS.SSLApp({
      cert_file_name: ssl.certificate,
      key_file_name: ssl.privateKey,
      ssl_ciphers: TLS12_CIPHERS,
      // no ca_file_name: uSockets would verify but not require client certificates (see front.ts)
    });
  } catch (err) {
    throw new ServingError(
      'E_INVALID_ARGUMENT',
      `RESTful server sslConfig: the certificate, private key or CA could not be loaded (${(err as Error).message}); check they are PEM files and that the key matches the certificate`,
    );
  }
}


export { JSON_TYPE, MSGPACK_TYPE };
