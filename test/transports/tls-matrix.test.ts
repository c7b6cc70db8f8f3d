// TLS and mutual TLS over both transports, one matrix, with certificates made by openssl for
// this run (test/helpers/certs.ts). REST is called with node:http / node:https and curl, gRPC
// with the project's Client. Each refused attempt is followed by a good client on the same
// server; every call, start and close is bounded in time, so a refusal that hangs fails.
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startGrpcServer } from '../../dist/transports/grpc/server.js';
import { Client } from '../../dist/transports/grpc/client.js';
import { type SSLConfig, startRestfulServer } from '../../dist/transports/rest/server.js';
import { EXPIRED_UNTIL, makeCerts } from '../helpers/certs.js';
import { f32, servableFixture } from '../helpers/fixtures.js';
import { SEED_REPLY, type EngineFixture, startEngine } from './rest/fixtures/rest.js';

const CALL_TIMEOUT_MS = 5000;
const X1 = [1, 2, 3, 4];
const X2 = [10, 20, 30, 40];
const SUM = [11, 22, 33, 44];

// made before anything starts: without openssl the file fails here, with a message saying so
const certFolder = servableFixture('tls-matrix-certs');
t.teardown(() => certFolder.remove());
const certs = makeCerts(certFolder.dir);
const pem = (file: string): Buffer => readFileSync(file);

let env: EngineFixture;
t.before(async () => {
  env = await startEngine('tls-matrix');
});
t.teardown(() => env?.stop());

const timeoutError = (what: string, ms: number): Error => Object.assign(new Error(`${what}: no outcome within ${ms} ms`), { code: 'E_TEST_TIMEOUT' });

/** Rejects when `promise` does not settle within `ms`: nothing here may wait forever. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError(what, ms)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** What a client brings: no `trust` = plaintext; else TLS trusting that CA, with a client certificate or not. */
interface ClientSide {
  readonly trust?: string;
  readonly certificate?: string;
  readonly privateKey?: string;
}

interface Served {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** What a refused call's error must match (tap's t.rejects pattern). */
interface Refusal {
  readonly code: RegExp | string;
  readonly message?: RegExp;
}

interface Transport {
  readonly name: string;
  start(sslConfig: SSLConfig): Promise<Served>;
  /** One add_common call of x1 = X1, x2 = X2; resolves with y's values, rejects with the client's error. */
  call(server: Served, client: ClientSide): Promise<number[]>;
  /** How a refusal surfaces: by the server (handshake or connection cut), by the client (untrusted server). */
  readonly serverRefuses: Refusal;
  readonly clientRefuses: Refusal;
}

function restCall(server: Served, client: ClientSide): Promise<number[]> {
  const body = JSON.stringify({ instances: [{ x1: [X1.slice(0, 2), X1.slice(2)], x2: [X2.slice(0, 2), X2.slice(2)] }] });
  const tls = client.trust === undefined ? undefined : { ca: pem(client.trust), ...(client.certificate ? { cert: pem(client.certificate), key: pem(client.privateKey!) } : {}) };
  return new Promise<number[]>((resolve, reject) => {
    const options = { host: '127.0.0.1', port: server.port, method: 'POST', path: '/model/add:add_common', agent: false, headers: { 'content-type': 'application/json' } };
    const req = tls ? https.request({ ...options, ...tls }) : http.request(options);
    const timer = setTimeout(() => req.destroy(timeoutError('REST call', CALL_TIMEOUT_MS)), CALL_TIMEOUT_MS);
    const settle = (err: Error | undefined, y?: number[]): void => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(y!);
    };
    req.on('error', settle);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c)).on('error', settle);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) return settle(Object.assign(new Error(`HTTP ${res.statusCode}: ${text}`), { code: 'E_HTTP_STATUS' }));
        settle(undefined, (JSON.parse(text) as { instances: [{ y: number[][] }] }).instances[0].y.flat());
      });
    });
    req.end(body);
  });
}

async function grpcCall(server: Served, client: ClientSide): Promise<number[]> {
  const sslConfig = client.trust === undefined ? undefined : { customCa: client.trust, certificate: client.certificate, privateKey: client.privateKey };
  const c = new Client(server.address, 'add', 'add_common', {
    timeoutMs: CALL_TIMEOUT_MS,
    // checks the server certificate's DNS:localhost (node:https and curl check its IP:127.0.0.1)
    channelOptions: { 'grpc.ssl_target_name_override': 'localhost' },
    ...(sslConfig ? { sslConfig } : {}),
  });
  try {
    const [out] = await c.infer({ x1: f32(X1), x2: f32(X2) });
    return [...(out!.y!.data as Float32Array)];
  } finally {
    c.close();
  }
}

const startRest = (sslConfig: SSLConfig): Promise<Served> =>
  within(CALL_TIMEOUT_MS, 'REST start', startRestfulServer(env.engine, '127.0.0.1:0', { sslConfig, closeTimeoutMs: 2000 }));
const startGrpc = (sslConfig: SSLConfig): Promise<Served> =>
  within(CALL_TIMEOUT_MS, 'gRPC start', startGrpcServer(env.engine, '127.0.0.1:0', { sslConfig, closeTimeoutMs: 2000 }));

const TRANSPORTS: readonly Transport[] = [
  {
    name: 'REST',
    start: startRest,
    call: restCall,
    // the server's alert when it arrives first, else the connection cut under the client's request
    serverRefuses: { code: /^(ECONNRESET|EPIPE|ERR_SSL_\w+)$/ },
    clientRefuses: { code: /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/ },
  },
  {
    name: 'gRPC',
    start: startGrpc,
    call: grpcCall,
    serverRefuses: { code: 'E_UNAVAILABLE', message: /No connection established/ },
    clientRefuses: { code: 'E_UNAVAILABLE', message: /unable to verify the first certificate|self-signed certificate in certificate chain/ },
  },
];

const tls = (): SSLConfig => ({ certificate: certs.serverCert, privateKey: certs.serverKey });
const mtls = (): SSLConfig => ({ ...tls(), customCa: certs.ca, verifyClient: true });

type Outcome = 'served' | 'server refuses' | 'client refuses';
const good: ClientSide = { trust: certs.ca, certificate: certs.clientCert, privateKey: certs.clientKey };
const MATRIX: readonly { server: string; ssl: () => SSLConfig; clients: readonly [string, ClientSide, Outcome][] }[] = [
  {
    server: 'TLS',
    ssl: tls,
    clients: [
      ['a client trusting the CA', { trust: certs.ca }, 'served'],
      ['a plaintext client', {}, 'server refuses'],
      ['a client trusting another CA', { trust: certs.otherCa }, 'client refuses'],
    ],
  },
  {
    server: 'mutual TLS',
    ssl: mtls,
    clients: [
      ['a client with a certificate from the CA', good, 'served'],
      ['a plaintext client', {}, 'server refuses'],
      ['a client without a certificate', { trust: certs.ca }, 'server refuses'],
      ['a client with a certificate from another CA', { trust: certs.ca, certificate: certs.strangerCert, privateKey: certs.strangerKey }, 'server refuses'],
      ['a client with an expired certificate from the CA', { trust: certs.ca, certificate: certs.expiredCert, privateKey: certs.expiredKey }, 'server refuses'],
      ['a client with a good certificate that trusts another CA', { ...good, trust: certs.otherCa }, 'client refuses'],
    ],
  },
];

t.test('the certificates are what the matrix says they are', async (t) => {
  const x509 = (file: string): X509Certificate => new X509Certificate(pem(file));
  const ca = x509(certs.ca);
  const server = x509(certs.serverCert);
  t.ok(server.verify(ca.publicKey), 'the server certificate is signed by the CA');
  t.equal(server.checkHost('localhost'), 'localhost');
  t.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
  t.notOk(server.checkPrivateKey(createPrivateKey(pem(certs.wrongKey))), 'wrongKey does not match it');
  const client = x509(certs.clientCert);
  t.ok(client.verify(ca.publicKey) && new Date(client.validTo) > new Date(), 'the good client certificate: from the CA, valid now');
  const expired = x509(certs.expiredCert);
  t.ok(expired.verify(ca.publicKey), 'the expired certificate is signed by the CA: only its dates are wrong');
  t.equal(new Date(expired.validTo).getTime(), EXPIRED_UNTIL.getTime(), 'and it expired on 2020-01-02');
  const stranger = x509(certs.strangerCert);
  t.ok(stranger.verify(x509(certs.otherCa).publicKey) && !stranger.verify(ca.publicKey), 'the stranger is signed by the other CA only');
});

for (const transport of TRANSPORTS) {
  for (const { server: mode, ssl, clients } of MATRIX) {
    t.test(`${transport.name}, ${mode} server`, async (t) => {
      const server = await transport.start(ssl());
      t.teardown(() => within(CALL_TIMEOUT_MS, 'close', server.close()));
      const goodClient = clients[0]![1];
      for (const [who, client, outcome] of clients) {
        const call = transport.call(server, client); // bounded by CALL_TIMEOUT_MS, with its own error
        if (outcome === 'served') {
          t.same(await call, SUM, `${who}: served, y = x1 + x2`);
          continue;
        }
        await t.rejects(call, outcome === 'server refuses' ? transport.serverRefuses : transport.clientRefuses, `${who}: ${outcome}`);
        t.same(await transport.call(server, goodClient), SUM, `after ${who}, a good client is still served`);
      }
    });
  }
}

t.test('start-up errors are clear, on both transports', async (t) => {
  const absent = path.join(certs.dir, 'absent');
  const cases: [string, SSLConfig, RegExp][] = [
    ['missing certificate', { ...tls(), certificate: `${absent}.pem` }, /sslConfig: certificate file .*absent\.pem cannot be read: ENOENT/],
    ['a certificate file without a certificate', { ...tls(), certificate: path.join(certs.dir, 'openssl.cnf') }, /sslConfig: certificate file .*openssl\.cnf holds no PEM certificate/],
    ['missing key', { ...tls(), privateKey: `${absent}.key` }, /sslConfig: privateKey file .*absent\.key cannot be read: ENOENT/],
    ['unreadable key (a folder)', { ...tls(), privateKey: certs.dir }, /sslConfig: privateKey file .* cannot be read: EISDIR/],
    ['a key file without a key', { ...tls(), privateKey: certs.serverCert }, /sslConfig: privateKey file .*server\.pem holds no usable PEM private key/],
    ['a key that does not match the certificate', { ...tls(), privateKey: certs.wrongKey }, /sslConfig: privateKey file .*wrong\.key does not match the certificate in .*server\.pem/],
    ['the same, with verifyClient', { ...mtls(), privateKey: certs.wrongKey }, /sslConfig: privateKey file .*wrong\.key does not match the certificate/],
    ['verifyClient without customCa', { ...tls(), verifyClient: true }, /sslConfig: verifyClient needs customCa/],
    ['missing customCa', { ...mtls(), customCa: `${absent}-ca.pem` }, /sslConfig: customCa file .*absent-ca\.pem cannot be read: ENOENT/],
    ['a customCa file without a certificate', { ...mtls(), customCa: certs.serverKey }, /sslConfig: customCa file .*server\.key holds no PEM certificate/],
  ];
  for (const transport of TRANSPORTS) {
    const prefix = transport.name === 'REST' ? 'RESTful server' : 'gRPC server';
    for (const [what, sslConfig, message] of cases) {
      // a server that starts after all is closed again, and the check fails
      const started = transport.start(sslConfig).then(async (s) => {
        await s.close();
        return s;
      });
      await t.rejects(started, { code: 'E_INVALID_ARGUMENT', message: new RegExp(`^${prefix} ${message.source}`) }, `${transport.name}: ${what}`);
    }
  }
});

const curl = promisify(execFile);
/** curl with its own bound and the test's; resolves with the reply parsed as JSON. */
async function curlJson(args: readonly string[]): Promise<unknown> {
  const { stdout } = await curl('curl', ['--silent', '--show-error', '--max-time', '10', ...args], { timeout: 15_000 });
  return JSON.parse(stdout);
}
const SEED = '{"instances":{"x1":[[1.0,1.0],[1.0,1.0]],"x2":[[1.0,1.0],[1.0,1.0]]}}';

t.test('curl: the seed example over HTTPS, and over mutual TLS', async (t) => {
  const rest = await startRest(tls());
  t.teardown(() => within(CALL_TIMEOUT_MS, 'close', rest.close()));
  const url = `https://127.0.0.1:${rest.port}/model/add:add_common`;
  t.same(await curlJson(['--insecure', url, '-X', 'POST', '-d', SEED]), SEED_REPLY, 'curl --insecure gets y = [[2,2],[2,2]]');
  t.same(await curlJson(['--cacert', certs.ca, url, '-X', 'POST', '-d', SEED]), SEED_REPLY, 'curl verifying the server against the CA (IP:127.0.0.1)');

  const strict = await startRest(mtls());
  t.teardown(() => within(CALL_TIMEOUT_MS, 'close', strict.close()));
  const strictUrl = `https://127.0.0.1:${strict.port}/model/add:add_common`;
  const withCert = ['--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey, strictUrl, '-X', 'POST', '-d', SEED];
  t.same(await curlJson(withCert), SEED_REPLY, 'curl with a client certificate from the CA');
  const refused = await curlJson(['--cacert', certs.ca, strictUrl, '-X', 'POST', '-d', SEED]).then(
    () => 'served',
    (err: { code?: unknown; killed?: boolean; stderr?: string }) => err,
  );
  t.match(refused, { killed: false, code: Number }, 'curl without a client certificate is refused (curl exits with an error, in time)');
  t.not((refused as { code?: unknown }).code, 28, 'not by its own --max-time');
  t.same(await curlJson(withCert), SEED_REPLY, 'and the server still serves curl with a certificate');
});
