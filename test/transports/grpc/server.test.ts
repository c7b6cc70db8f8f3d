// The gRPC server's limits and set-up: message size (a 50 MB tensor accepted under the
// default 100 MiB, refused under 40), option and address checks, unix socket claiming,
// close(), the PredictStream over mutual TLS. Who TLS serves and refuses, and TLS start-up
// errors: ../tls-matrix.test.ts.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ServingError } from '../../../dist/engine/errors.js';
import { startGrpcServer } from '../../../dist/transports/grpc/server.js';
import { Client } from '../../../dist/transports/grpc/client.js';
import { makeCerts } from '../../helpers/certs.js';
import { type EngineFixture, startEngine } from './fixtures/engine.js';

let fx: EngineFixture;
t.before(async () => {
  fx = await startEngine('grpc-server', { only: ['echo'] });
});
t.teardown(() => fx?.stop());

const small = { x: Float32Array.of(1, 2) };

t.test('a 50 MB tensor is accepted under the default limit and refused under a smaller one', async (t) => {
  const big = new Uint8Array(50 * 1000 * 1000);
  for (let i = 0; i < big.length; i += 4099) big[i] = i & 0xff;
  const roomy = await startGrpcServer(fx.engine, '127.0.0.1:0');
  const tight = await startGrpcServer(fx.engine, '127.0.0.1:0', { maxMsgMbSize: 40 });
  t.teardown(async () => {
    await roomy.close();
    await tight.close();
  });
  const ok = new Client(roomy.address, 'echo', 'echo');
  const [o] = await ok.infer({ x: big });
  t.equal(o!.y!.dtype, 'uint8');
  t.same(o!.y!.shape, [big.length]);
  t.ok(Buffer.from(o!.y!.data as Uint8Array).equals(big), '50 MB came back intact');
  ok.close();

  const refused = new Client(tight.address, 'echo', 'echo');
  const err = await refused.infer({ x: big }).catch((e: unknown) => e);
  t.ok(err instanceof ServingError, 'a ServingError');
  t.match(err, { code: 'E_INVALID_ARGUMENT', message: /larger than the gRPC message size limit/ });
  const [s] = await refused.infer(small);
  t.same([...(s!.y!.data as Float32Array)], [1, 2], 'the server still serves');
  refused.close();

  // the client's own limit applies too
  const stingy = new Client(roomy.address, 'echo', 'echo', { maxMsgMbSize: 1 });
  await t.rejects(stingy.infer({ x: new Uint8Array(2 * 1024 * 1024) }), { code: 'E_INVALID_ARGUMENT', message: /larger than/ }, 'send');
  stingy.close();
});

t.test('options and addresses are checked', async (t) => {
  const bad: [string, object, RegExp][] = [
    ['127.0.0.1:0', { maxMsgMbSize: 0 }, /maxMsgMbSize must be a number in \(0, 512\]/],
    ['127.0.0.1:0', { maxMsgMbSize: 513 }, /maxMsgMbSize/],
    ['127.0.0.1:0', { streamWindow: 0 }, /streamWindow/],
    ['127.0.0.1:0', { maxConcurrentStreams: 1.5 }, /maxConcurrentStreams/],
    ['127.0.0.1:0', { sslConfig: { certificate: '/nonexistent.pem', privateKey: '/nonexistent.key' } }, /certificate file \/nonexistent.pem cannot be read/],
    ['5500', {}, /has no port/],
    [':5500', {}, /host is missing/],
    ['127.0.0.1:', {}, /port "" is not in 0-65535/],
    ['127.0.0.1:65536', {}, /not in 0-65535/],
    ['127.0.0.0.1:5000', {}, /not an IPv4 address/],
    ['127.0.256.1:5000', {}, /not an IPv4 address/],
    ['::1:5000', {}, /must be in brackets/],
    ['unix:', {}, /unix socket path is empty/],
  ];
  for (const [address, options, message] of bad) {
    await t.rejects(startGrpcServer(fx.engine, address, options), { code: 'E_INVALID_ARGUMENT', message }, `${address} ${JSON.stringify(options)}`);
  }
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const port = (busy.address() as { port: number }).port;
  await t.rejects(startGrpcServer(fx.engine, `127.0.0.1:${port}`), { code: 'E_UNAVAILABLE', message: /could not bind/ }, 'port in use');
  busy.close();
});

t.test('unix sockets: a live one is refused, a stale one reclaimed, a plain file left alone', async (t) => {
  const dir = path.join(tmpdir(), `asgrpc-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 's.sock');
  const first = await startGrpcServer(fx.engine, `unix:${sock}`);
  t.equal(first.address, `unix:${sock}`);
  t.equal(first.port, 0);
  await t.rejects(startGrpcServer(fx.engine, `unix:${sock}`), { code: 'E_UNAVAILABLE', message: /another server is listening/ });
  await first.close();
  // a socket file left behind by a server that died
  const stale = createServer();
  await new Promise<void>((r) => stale.listen(sock, r));
  (stale as unknown as { _handle: { close(): void } })._handle.close(); // close without unlinking
  const second = await startGrpcServer(fx.engine, `unix:${sock}`);
  const c = new Client(second.address, 'echo', 'echo');
  const [o] = await c.infer(small);
  t.same([...(o!.y!.data as Float32Array)], [1, 2]);
  c.close();
  await second.close();
  const file = path.join(dir, 'file');
  writeFileSync(file, 'x');
  await t.rejects(startGrpcServer(fx.engine, `unix:${file}`), { code: 'E_INVALID_ARGUMENT', message: /not a socket/ });
});

t.test('close() stops serving', async (t) => {
  const server = await startGrpcServer(fx.engine, '127.0.0.1:0', { closeTimeoutMs: 2000 });
  t.match(server.address, /^127\.0\.0\.1:\d+$/);
  t.ok(server.port > 0);
  const c = new Client(server.address, 'echo', 'echo', { timeoutMs: 2000 });
  await c.infer(small);
  t.equal(server.stats.unaryCalls, 1);
  const t0 = performance.now();
  await server.close();
  await server.close(); // idempotent
  t.ok(performance.now() - t0 < 2000, 'an idle server closes at once');
  await t.rejects(c.infer(small), { code: /E_UNAVAILABLE|E_DEADLINE_EXCEEDED/ });
  c.close();
});

t.test('the PredictStream over mutual TLS (unary calls: ../tls-matrix.test.ts)', async (t) => {
  const certs = makeCerts(path.join(fx.fx.dir, 'certs'));
  const server = await startGrpcServer(fx.engine, '127.0.0.1:0', {
    sslConfig: { certificate: certs.serverCert, privateKey: certs.serverKey, customCa: certs.ca, verifyClient: true },
  });
  t.teardown(() => server.close());
  const open = (sslConfig: object): Client =>
    new Client(server.address, 'echo', 'echo', { timeoutMs: 3000, sslConfig, channelOptions: { 'grpc.ssl_target_name_override': 'localhost' } });
  const good = open({ customCa: certs.ca, certificate: certs.clientCert, privateKey: certs.clientKey });
  const stream = good.stream();
  const replies = await Promise.all([1, 2, 3].map((k) => stream.infer({ x: Float32Array.of(k, -k) })));
  t.same(replies.map(([o]) => [...(o!.y!.data as Float32Array)]), [[1, -1], [2, -2], [3, -3]], 'three requests on one stream');
  await stream.end();
  good.close();
  t.equal(server.stats.streams, 1);

  const bare = open({ customCa: certs.ca });
  await t.rejects(bare.stream().infer(small), { code: 'E_UNAVAILABLE' }, 'a stream without a client certificate is refused');
  bare.close();
  t.equal(server.stats.streams, 1, 'and never reached the server');
});
