// HTTPS matters of the REST transport alone, with and without verifyClient (uWS's own TLS, or
// the Node TLS front of front.ts): the protocol and cipher policy, and keep-alive HTTPS
// connections through close(). Who is served and who is refused, and the start-up errors, are
// in ../tls-matrix.test.ts for both transports.
import t from 'tap';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { startRestfulServer, type SSLConfig } from '../../../dist/transports/rest/server.js';
import { makeCerts, type TestCerts } from '../../helpers/certs.js';
import { SEED_BODY, SEED_REPLY, startEngine, type EngineFixture } from './fixtures/rest.js';

const WAIT_MS = 5000;
let env: EngineFixture;
let certs: TestCerts;

t.before(async () => {
  env = await startEngine('tls');
  certs = makeCerts(path.join(env.fx.dir, 'certs'));
});
t.teardown(async () => {
  await env?.stop();
});

const modes = (): [string, SSLConfig][] => {
  const files = { certificate: certs.serverCert, privateKey: certs.serverKey };
  return [
    ['HTTPS', files],
    ['mutual TLS', { ...files, customCa: certs.ca, verifyClient: true }],
  ];
};
const clientFiles = (): tls.ConnectionOptions => ({ ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) });

/** A TLS handshake only; resolves with the protocol and cipher agreed, rejects with the handshake's error. */
function handshake(port: number, options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...clientFiles(), ...options, timeout: WAIT_MS }, () => {
      resolve(`${socket.getProtocol()} ${socket.getCipher().name}`);
      socket.end();
    });
    socket.on('timeout', () => socket.destroy(new Error(`no handshake within ${WAIT_MS} ms`)));
    socket.on('error', reject);
  });
}

t.test('TLS 1.2 is limited to ECDHE AEAD suites, and older protocols are refused', async (t) => {
  for (const [mode, sslConfig] of modes()) {
    const rest = await startRestfulServer(env.engine, '127.0.0.1:0', { sslConfig, closeTimeoutMs: 2000 });
    t.teardown(() => rest.close());
    t.match(await handshake(rest.port, {}), /^TLSv1\.3 /, `${mode}: TLS 1.3 by default`);
    t.equal(await handshake(rest.port, { maxVersion: 'TLSv1.2' }), 'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256', `${mode}: TLS 1.2 with an ECDHE AEAD suite`);
    // the client allows what the server must not: the refusal is the server's alert
    await t.rejects(
      handshake(rest.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0' }),
      { code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' },
      `${mode}: a CBC suite is refused`,
    );
    await t.rejects(
      handshake(rest.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }),
      { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' },
      `${mode}: TLS 1.1 is refused`,
    );
  }
});

t.test('a keep-alive HTTPS connection carries several requests, and close() ends it at once', async (t) => {
  for (const [mode, sslConfig] of modes()) {
    const rest = await startRestfulServer(env.engine, '127.0.0.1:0', { sslConfig, closeTimeoutMs: 3000 });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...clientFiles() });
    t.teardown(() => agent.destroy());
    const sockets = new Set<Socket>();
    const post = (): Promise<{ reused: boolean; json: unknown }> =>
      new Promise((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: rest.port, method: 'POST', path: '/model/add:add_common', agent, timeout: WAIT_MS }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ reused: req.reusedSocket, json: JSON.parse(text) }));
        });
        req.on('socket', (s) => sockets.add(s));
        req.on('timeout', () => req.destroy(new Error(`no reply within ${WAIT_MS} ms`)));
        req.on('error', reject);
        req.end(SEED_BODY);
      });
    for (let i = 0; i < 3; i++) {
      const r = await post();
      t.same(r.json, SEED_REPLY, `${mode}: request ${i + 1} answered`);
      t.equal(r.reused, i > 0, `${mode}: request ${i + 1} ${i > 0 ? 'reuses' : 'opens'} the connection`);
    }
    t.equal(sockets.size, 1, `${mode}: one connection`);
    const [socket] = sockets;
    const closed = new Promise<void>((resolve) => (socket!.destroyed ? resolve() : socket!.once('close', () => resolve())));
    const t0 = performance.now();
    await rest.close();
    await Promise.race([closed, new Promise((r) => setTimeout(r, WAIT_MS))]);
    t.ok(socket!.destroyed, `${mode}: the idle connection is closed by close()`);
    t.ok(performance.now() - t0 < 1500, `${mode}: without waiting for closeTimeoutMs`);
  }
});
