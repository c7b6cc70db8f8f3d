/**
 * Mutual TLS in front of the uWS app. uWS 20.30 (uSockets + BoringSSL) verifies a client
 * certificate when one is presented but does not require one (SSL_VERIFY_PEER without
 * FAIL_IF_NO_PEER_CERT), and it exposes no peer certificate to check. So with `verifyClient`
 * a Node TLS server terminates TLS — requiring a client certificate that chains to customCa —
 * and pipes each connection to the plain-HTTP uWS app on a private unix socket.
 */
import { connect, type Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
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

export class TlsFront {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  /** Throws when the PEM contents do not form a valid TLS context. */
  constructor(pem: TlsPem & { readonly customCa: Buffer }, private readonly backendPath: string) {
    this.server = createServer(
      {
        cert: pem.certificate,
        key: pem.privateKey,
        ca: pem.customCa,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
        ciphers: TLS12_CIPHERS,
      },
      (client) => this.pipe(client),
    );
    this.server.on('tlsClientError', () => {}); // refused handshakes are the client's problem
  }

  /** Listens; resolves with the TCP port bound (0 for a unix socket). */
  listen(at: ListenAddress): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = (): void => {
        this.server.off('error', reject);
        const a = this.server.address();
        resolve(typeof a === 'object' && a !== null ? a.port : 0);
      };
      if (at.kind === 'unix') this.server.listen(at.path, done);
      else this.server.listen({ host: at.host, port: at.port, exclusive: true }, done);
    });
  }

  /** Stops accepting new connections. */
  stopAccepting(): void {
    this.server.close();
  }

  /** Closes every connection still open. */
  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private pipe(client: TLSSocket): void {
    const backend = connect(this.backendPath);
    this.sockets.add(client);
    this.sockets.add(backend);
    const end = (): void => {
      client.destroy();
      backend.destroy();
      this.sockets.delete(client);
      this.sockets.delete(backend);
    };
    client.on('error', end).on('close', end);
    backend.on('error', end).on('close', end);
    client.pipe(backend);
    backend.pipe(client);
  }
}
