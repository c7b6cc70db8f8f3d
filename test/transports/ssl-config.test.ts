// MindSpore Serving 1.3's SSLConfig, both sides: `server.SSLConfig({ certificate, privateKey,
// customCa, verifyClient })` for the servers and the client's `SSLConfig({ certificate,
// privateKey, customCa })`, each callable with or without `new` and checked when made. Real
// TLS and mutual TLS with certificates made by openssl for this run (test/helpers/certs.ts);
// every call and start is bounded in time.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import t from 'tap';
import * as actorserve from '../../dist/index.js';
import * as clientModule from '../../dist/transports/grpc/client.js';
import { Client, SSLConfig } from '../../dist/transports/grpc/client.js';
import { makeCerts } from '../helpers/certs.js';
import { f32, servableFixture } from '../helpers/fixtures.js';
import { type EngineFixture, startEngine } from './rest/fixtures/rest.js';

const CALL_TIMEOUT_MS = 5000;

const certFolder = servableFixture('ssl-config-certs');
t.teardown(() => certFolder.remove());
const certs = makeCerts(certFolder.dir);

let env: EngineFixture;
t.before(async () => {
  env = await startEngine('ssl-config');
});
t.teardown(() => env?.stop());

/** One add_common call over gRPC; resolves with y's values. */
async function grpcAdd(port: number, sslConfig: clientModule.SSLConfig): Promise<number[]> {
  const client = new Client(`127.0.0.1:${port}`, 'add', 'add_common', {
    sslConfig,
    timeoutMs: CALL_TIMEOUT_MS,
    // the server certificate names DNS:localhost
    channelOptions: { 'grpc.ssl_target_name_override': 'localhost' },
  });
  try {
    const [out] = await client.infer({ x1: f32([1, 2, 3, 4]), x2: f32([10, 20, 30, 40]) });
    return [...(out!.y!.data as Float32Array)];
  } finally {
    client.close();
  }
}

/** One add_common call over HTTPS trusting the test CA; resolves with the status and body. */
function httpsAdd(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/model/add:add_common', agent: false, ca: readFileSync(certs.ca), timeout: CALL_TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c)).on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`HTTPS call: no reply within ${CALL_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end('{"instances":[{"x1":[[1,2],[3,4]],"x2":[[10,20],[30,40]]}]}');
  });
}

t.test('server.SSLConfig: a member of the server object, with or without new, frozen', async (t) => {
  const { server } = actorserve;
  t.equal(server.SSLConfig, actorserve.SSLConfig, "the package's server.SSLConfig is the exported SSLConfig");
  t.equal(env.engine.SSLConfig, actorserve.SSLConfig, 'every ServingServer has it');
  const options = { certificate: certs.serverCert, privateKey: certs.serverKey, customCa: certs.ca, verifyClient: true };
  const called = server.SSLConfig(options);
  const constructed = new server.SSLConfig(options);
  t.same({ ...called }, options);
  t.same({ ...constructed }, options);
  t.ok(called instanceof server.SSLConfig && constructed instanceof server.SSLConfig, 'instanceof holds for both forms');
  t.ok(Object.isFrozen(called), 'frozen');
  t.not(called, options, 'a copy: changing the options object later changes nothing');
  t.same({ ...server.SSLConfig({ certificate: certs.serverCert, privateKey: certs.serverKey }) }, { certificate: certs.serverCert, privateKey: certs.serverKey });
});

t.test('server.SSLConfig refuses bad arguments when made, with clear messages', async (t) => {
  const { server } = actorserve;
  const tls = { certificate: certs.serverCert, privateKey: certs.serverKey };
  const absent = path.join(certs.dir, 'absent');
  const cases: [string, unknown, RegExp][] = [
    ["MindSpore's positional form", certs.serverCert, /^server\.SSLConfig takes one object: server\.SSLConfig\(\{ certificate, privateKey, customCa, verifyClient \}\), got string$/],
    ['nothing', undefined, /^server\.SSLConfig takes one object: .*got undefined$/],
    ['a misspelled key', { ...tls, private_key: certs.serverKey }, /^server\.SSLConfig: unknown option 'private_key' \(did you mean 'privateKey'\?\)$/],
    ['no privateKey', { certificate: certs.serverCert }, /^server\.SSLConfig: privateKey is required$/],
    ['an empty certificate path', { ...tls, certificate: '' }, /^server\.SSLConfig: certificate must be a non-empty string, got ''$/],
    ['verifyClient not a boolean', { ...tls, customCa: certs.ca, verifyClient: 'yes' }, /^server\.SSLConfig: verifyClient must be true or false, got 'yes'$/],
    ['verifyClient without customCa', { ...tls, verifyClient: true }, /^server\.SSLConfig: verifyClient needs customCa/],
    ['a missing certificate file', { ...tls, certificate: `${absent}.pem` }, /^server\.SSLConfig: certificate file .*absent\.pem cannot be read: ENOENT/],
    ['a key that does not match', { ...tls, privateKey: certs.wrongKey }, /^server\.SSLConfig: privateKey file .*wrong\.key does not match the certificate/],
    ['a customCa without a certificate', { ...tls, customCa: certs.serverKey }, /^server\.SSLConfig: customCa file .*server\.key holds no PEM certificate/],
  ];
  for (const [what, options, message] of cases) {
    t.throws(() => server.SSLConfig(options as never), { code: 'E_INVALID_ARGUMENT', message }, what);
    t.throws(() => new server.SSLConfig(options as never), { code: 'E_INVALID_ARGUMENT', message }, `${what} (new)`);
  }
});

t.test("the client's SSLConfig: exported by actorserve/client, with or without new, checked when made", async (t) => {
  t.equal(clientModule.SSLConfig, SSLConfig);
  const options = { certificate: certs.clientCert, privateKey: certs.clientKey, customCa: certs.ca };
  const called = SSLConfig(options);
  t.same({ ...called }, options);
  t.same({ ...new SSLConfig(options) }, options);
  t.ok(called instanceof SSLConfig && Object.isFrozen(called));
  t.same({ ...SSLConfig() }, {}, "no argument: TLS verified by the system's roots");
  const cases: [string, unknown, RegExp][] = [
    ['a string', certs.ca, /^SSLConfig takes one object: SSLConfig\(\{ certificate, privateKey, customCa \}\), got string$/],
    ['a misspelled key', { custom_ca: certs.ca }, /^SSLConfig: unknown option 'custom_ca' \(did you mean 'customCa'\?\)$/],
    ['a certificate without its key', { certificate: certs.clientCert }, /^SSLConfig: certificate and privateKey must be given together$/],
    ['a key without its certificate', { privateKey: certs.clientKey }, /^SSLConfig: certificate and privateKey must be given together$/],
    ['a missing customCa file', { customCa: path.join(certs.dir, 'absent.pem') }, /^SSLConfig: customCa file .*absent\.pem cannot be read: ENOENT/],
    ['a number for a path', { customCa: 7 }, /^SSLConfig: customCa must be a non-empty string, got 7$/],
  ];
  for (const [what, options, message] of cases) {
    t.throws(() => SSLConfig(options as never), { code: 'E_INVALID_ARGUMENT', message }, what);
  }
});

t.test('TLS: servers started with server.SSLConfig, a client with SSLConfig', async (t) => {
  const server = env.engine;
  const sslConfig = server.SSLConfig({ certificate: certs.serverCert, privateKey: certs.serverKey });
  const grpc = await server.startGrpcServer('127.0.0.1:0', { sslConfig, closeTimeoutMs: 2000 });
  t.teardown(() => grpc.close());
  const rest = await server.startRestfulServer('127.0.0.1:0', { sslConfig, closeTimeoutMs: 2000 });
  t.teardown(() => rest.close());
  t.same(await grpcAdd(grpc.port, SSLConfig({ customCa: certs.ca })), [11, 22, 33, 44], 'gRPC over TLS');
  t.same(await grpcAdd(grpc.port, new SSLConfig({ customCa: certs.ca })), [11, 22, 33, 44], 'the same with new SSLConfig');
  t.same(await grpcAdd(grpc.port, { customCa: certs.ca }), [11, 22, 33, 44], 'a plain object still works');
  const reply = await httpsAdd(rest.port);
  t.same([reply.status, JSON.parse(reply.body)], [200, { instances: [{ y: [[11, 22], [33, 44]] }] }], 'REST over HTTPS');
});

t.test('mutual TLS: server.SSLConfig with verifyClient; the client brings its certificate in SSLConfig', async (t) => {
  const server = env.engine;
  const sslConfig = new server.SSLConfig({ certificate: certs.serverCert, privateKey: certs.serverKey, customCa: certs.ca, verifyClient: true });
  const grpc = await server.startGrpcServer('127.0.0.1:0', { sslConfig, closeTimeoutMs: 2000 });
  t.teardown(() => grpc.close());
  const withCertificate = SSLConfig({ certificate: certs.clientCert, privateKey: certs.clientKey, customCa: certs.ca });
  t.same(await grpcAdd(grpc.port, withCertificate), [11, 22, 33, 44], 'a client certificate from the CA: served');
  await t.rejects(grpcAdd(grpc.port, SSLConfig({ customCa: certs.ca })), { code: 'E_UNAVAILABLE' }, 'no client certificate: refused');
  const stranger = SSLConfig({ certificate: certs.strangerCert, privateKey: certs.strangerKey, customCa: certs.ca });
  await t.rejects(grpcAdd(grpc.port, stranger), { code: 'E_UNAVAILABLE' }, 'a certificate from another CA: refused');
  t.same(await grpcAdd(grpc.port, withCertificate), [11, 22, 33, 44], 'a good client is still served after the refusals');
});
