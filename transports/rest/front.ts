/**
 * A Node server in front of the uWS app, piping each connection to the app's private unix
 * socket. uWS 20.30 has no hook for connections (only for requests), so what must act per
 * connection is done here; the front is used only when such an option is set, since every
 * byte then passes through Node (docs/rest.md gives the cost):
 *
 *  - mutual TLS (`verifyClient`): uWS (uSockets + BoringSSL) verifies a client certificate when
 *    one is presented but does not require one (SSL_VERIFY_PEER without FAIL_IF_NO_PEER_CERT),
 *    and exposes no peer certificate to check. The front is then a Node TLS server that requires
 *    a client certificate chaining to customCa and pipes plain HTTP to the app.
 *  - `maxConnections`: the front counts connections; one over the limit is answered 503 (when
 *    the front speaks HTTP in the clear, i.e. plain HTTP or mutual TLS) or closed (HTTPS passed
 *    through to uWS's own TLS, where the front cannot write a reply).
 */
import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { type TlsOptions, createServer as createTlsServer } from 'node:tls';
import type { TlsPem } from '../ssl-config.js';
import type { ListenAddress } from '../listen-address.js';

/**
 * The ECDHE AEAD suites MindSpore Serving allows for TLS 1.2; being TLS 1.2-only suites they also
 * rule out TLS 1.0/1.1. TLS 1.3 suites are configured separately (the library defaults).
 */
export const TLS12_CIPHERS = [
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
].join(':');

/** How long a refused connection may go on sending (its request is read and dropped) before it is cut. */
export const REFUSED_LINGER_MS = 1000;

/** A Node TLS server's options requiring a client certificate that chains to `customCa` (mutual TLS). */
export function tlsServerOptions(pem: TlsPem, requireClientCert = true): TlsOptions {
  return {
    cert: pem.certificate,
    key: pem.privateKey,
    ...(requireClientCert ? { ca: pem.customCa, requestCert: true, rejectUnauthorized: true } : {}),
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
  };
}

/** The body of the 503 a connection over `maxConnections` gets. */
export function overLimitMessage(max: number): string {
  return JSON.stringify({ error_msg: `the RESTful server has ${max} connections open, its limit (maxConnections); retry later` });
}

/** Listens on `at` (a TCP port bound exclusively, or a unix socket); resolves with the TCP port bound (0 for a unix socket). */
export function listenOn(server: TcpServer, at: ListenAddress): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    };
    if (at.kind === 'unix') server.listen(at.path, done);
    else server.listen({ host: at.host, port: at.port, exclusive: true }, done);
  });
}

/** What server.ts needs of a front: the pass-through one (this file) or the strict HTTP/1.1 one (strict-front.ts). */
export interface RestFront {
  /** Listens; resolves with the TCP port bound (0 for a unix socket). */
  listen(at: ListenAddress): Promise<number>;
  /** Stops accepting new connections (a drain: those open stay, to be answered). */
  stopAccepting(): void;
  /** Closes every connection still open. */
  destroyAll(): void;
  /** Resolves when every reply the front is passing on has reached its client (fronts that know). */
  settled?(): Promise<void>;
}

export interface FrontOptions {
  /** Terminate TLS requiring a client certificate (mutual TLS); absent: pass bytes through as they are. */
  readonly mutualTls?: TlsPem & { readonly customCa: Buffer };
  /** Connections open at once; absent: no limit. */
  readonly maxConnections?: number;
  /** The bytes passed through are TLS (uWS's own HTTPS behind): a refused connection cannot be answered. */
  readonly passesTls?: boolean;
}

export class Front implements RestFront {
  private readonly server: TcpServer;
  private readonly clients = new Set<Socket>();
  private readonly backends = new Set<Socket>();
  private readonly refusal: Buffer | undefined;

  /** Throws when `mutualTls`'s PEM contents do not form a valid TLS context. */
  constructor(private readonly backendPath: string, private readonly options: FrontOptions) {
    const tlsPem = options.mutualTls;
    this.server = tlsPem ? createTlsServer(tlsServerOptions(tlsPem), (client) => this.accept(client)) : createTcpServer((client) => this.accept(client));
    this.server.on('tlsClientError', () => {}); // refused handshakes are the client's problem
    if (options.maxConnections !== undefined && !options.passesTls) {
      const body = overLimitMessage(options.maxConnections);
      this.refusal = Buffer.from(
        `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    }
  }

  /** Listens; resolves with the TCP port bound (0 for a unix socket). */
  listen(at: ListenAddress): Promise<number> {
    return listenOn(this.server, at);
  }

  /** Stops accepting new connections. */
  stopAccepting(): void {
    this.server.close();
  }

  /** Closes every connection still open. */
  destroyAll(): void {
    for (const s of this.clients) s.destroy();
    for (const s of this.backends) s.destroy();
    this.clients.clear();
    this.backends.clear();
  }

  private accept(client: Socket): void {
    const max = this.options.maxConnections;
    if (max !== undefined && this.clients.size >= max) return this.refuse(client);
    client.setNoDelay(true); // replies leave in one write each: no Nagle wait (uWS sets TCP_NODELAY too)
    const backend = connect(this.backendPath);
    this.clients.add(client);
    this.backends.add(backend);
    const end = (): void => {
      client.destroy();
      backend.destroy();
      this.clients.delete(client);
      this.backends.delete(backend);
    };
    client.on('error', end).on('close', end);
    backend.on('error', end).on('close', end);
    client.pipe(backend);
    backend.pipe(client);
  }

  /**
   * Over the limit: a 503 and close, where the front speaks HTTP. What the client sent is read
   * and dropped for a moment, so that closing with unread bytes does not reset the connection
   * before the 503 arrives.
   */
  private refuse(client: Socket): void {
    client.on('error', () => client.destroy());
    if (this.refusal === undefined) {
      client.destroy();
      return;
    }
    const cut = setTimeout(() => client.destroy(), REFUSED_LINGER_MS);
    client.on('close', () => clearTimeout(cut));
    client.resume();
    client.end(this.refusal);
  }
}
