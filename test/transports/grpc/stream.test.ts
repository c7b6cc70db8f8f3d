// actorserve.v1 PredictStream: 3 000 pipelined requests in a bounded window with replies
// out of order matched by id, per-request errors, deadlines, a client that stops reading,
// a repeated id, cancel, server shutdown, and the same over a unix socket.
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client as GrpcClient, Metadata, credentials } from '@grpc/grpc-js';
import t, { type Test } from 'tap';
import { ServingError } from '../../../dist/engine/errors.js';
import { startGrpcServer, type GrpcServer } from '../../../dist/transports/grpc/server.js';
import { Client } from '../../../dist/transports/grpc/client.js';
import { PREDICT_STREAM_PATH, protos } from '../../../dist/transports/grpc/proto.js';
import type { WireStreamReply, WireStreamRequest } from '../../../dist/transports/grpc/proto.js';
import { type EngineFixture, f32, startEngine } from './fixtures/engine.js';

const WINDOW = 64;
let fx: EngineFixture;
let server: GrpcServer;

t.before(async () => {
  fx = await startEngine('grpc-stream', { echoWorkers: 8 });
  server = await startGrpcServer(fx.engine, '127.0.0.1:0', { streamWindow: WINDOW });
});
t.teardown(async () => {
  await server?.close();
  await fx?.stop();
});

function rawStream(address: string) {
  const { predictStream } = protos();
  const c = new GrpcClient(address, credentials.createInsecure());
  const call = c.makeBidiStreamRequest<WireStreamRequest, WireStreamReply>(
    PREDICT_STREAM_PATH,
    predictStream.requestSerialize,
    predictStream.responseDeserialize,
    new Metadata(),
    {},
  );
  const status = new Promise<{ code: number; details: string; metadata: Metadata }>((resolve) => call.on('status', resolve));
  call.on('error', () => undefined);
  return { client: c, call, status };
}

const int32 = (v: number) => ({ dtype: 'int32' as const, shape: [1], data: Int32Array.of(v) });

async function pipelined(t: Test, address: string, count: number) {
  const client = new Client(address, 'echo', 'jitter');
  const stream = client.stream();
  const completed: number[] = [];
  let wrong = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      stream.infer({ x: int32(i) }).then(([o]) => {
        if ((o!.y!.data as Int32Array)[0] !== i) wrong++;
        completed.push(i);
      }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  await stream.end();
  client.close();
  t.equal(completed.length, count, `${count} replies`);
  t.equal(wrong, 0, 'every reply carries its own request id and data');
  let inversions = 0;
  for (let k = 1; k < completed.length; k++) if (completed[k]! < completed[k - 1]!) inversions++;
  t.ok(inversions > 0, `replies came back out of order (${inversions} inversions) and were matched by id`);
  t.comment(`${count} pipelined requests in ${seconds.toFixed(2)} s (${Math.round(count / seconds)}/s)`);
}

t.test('3 000 pipelined requests: bounded window, out-of-order replies matched by id', async (t) => {
  await pipelined(t, server.address, 3_000);
  t.ok(server.stats.peakStreamInflight <= WINDOW, `at most the window in flight (peak ${server.stats.peakStreamInflight})`);
  t.equal(server.stats.activeStreams, 0, 'the stream ended');
});

// How full the window gets with fast requests depends on how fast this process's client keeps
// sending (a loaded machine saw peaks of 25–47); requests that each take 300 ms fill it for sure.
t.test('slow requests fill the window, and never more than it', async (t) => {
  const client = new Client(server.address, 'add', 'slow', { versionNumber: 1 });
  const stream = client.stream();
  t.teardown(() => client.close());
  const x1 = f32([300, 300, 300, 300]); // sleepy waits x1[0] ms before the add
  const x2 = f32([1, 1, 1, 1]);
  const outs = await Promise.all(Array.from({ length: 2 * WINDOW }, () => stream.infer({ x1, x2 })));
  await stream.end();
  t.equal(outs.length, 2 * WINDOW, 'every request answered');
  t.equal(server.stats.peakStreamInflight, WINDOW, 'the server held exactly its window of requests in flight');
});

t.test('every dtype and several instances on the stream', async (t) => {
  const client = new Client(server.address, 'echo', 'echo');
  const stream = client.stream();
  t.teardown(() => client.close());
  const xs = [
    { dtype: 'float16', shape: [2], data: Uint16Array.of(0x3c00, 0xfbff) },
    { dtype: 'int64', shape: [], data: BigInt64Array.of(-5n) },
    { dtype: 'uint64', shape: [1], data: BigUint64Array.of(2n ** 64n - 1n) },
    { dtype: 'bool', shape: [3], data: Uint8Array.of(1, 0, 1) },
    { dtype: 'string', shape: [], data: [Buffer.from('ünïcode')] },
    { dtype: 'bytes', shape: [2], data: [Buffer.from([0]), Buffer.from([255, 1])] },
    { dtype: 'float64', shape: [1, 1], data: Float64Array.of(-1e300) },
  ];
  const out = await stream.infer(xs.map((x) => ({ x: x as never })));
  t.equal(out.length, xs.length);
  out.forEach((o, i) => {
    t.equal(o.y!.dtype, xs[i]!.dtype);
    t.same(o.y!.shape, xs[i]!.shape);
    t.same(
      Array.isArray(o.y!.data) ? o.y!.data.map((b) => Buffer.from(b).toString('hex')) : Array.from(o.y!.data as ArrayLike<unknown>),
      Array.isArray(xs[i]!.data) ? (xs[i]!.data as Buffer[]).map((b) => b.toString('hex')) : Array.from(xs[i]!.data as ArrayLike<unknown>),
    );
  });
  await stream.end();
});

t.test('per-request errors travel in replies; the stream carries on', async (t) => {
  const client = new Client(server.address, 'add', 'add_common', { versionNumber: 1 });
  const wrong = new Client(server.address, 'nope', 'add_common');
  t.teardown(() => {
    client.close();
    wrong.close();
  });
  const stream = client.stream();
  const good = { x1: f32([1, 2, 3, 4]), x2: f32([1, 1, 1, 1]) };
  const bad = { x1: { dtype: 'int32' as const, shape: [2, 2], data: Int32Array.of(1, 2, 3, 4) }, x2: f32([1, 1, 1, 1]) };
  const [mixed, zero, missing, after] = await Promise.allSettled([
    stream.inferEach([good, bad]),
    stream.inferEach([]),
    stream.infer({ x1: f32([1, 2, 3, 4]) }),
    stream.infer(good),
  ]);
  t.equal(mixed.status, 'fulfilled');
  const outs = (mixed as PromiseFulfilledResult<unknown[]>).value;
  t.same([...((outs[0] as { y: { data: Float32Array } }).y.data)], [2, 3, 4, 5]);
  t.match(outs[1], { code: 'E_INVALID_DTYPE' });
  t.ok(outs[1] instanceof ServingError);
  t.match(zero, { status: 'rejected', reason: { code: 'E_NO_INSTANCES' } }, 'zero instances: an error reply');
  t.match(missing, { status: 'rejected', reason: { code: 'E_MISSING_INPUT' } });
  t.equal(after.status, 'fulfilled', 'later requests still served');
  const ws = wrong.stream();
  await t.rejects(ws.infer(good), { code: 'E_UNKNOWN_SERVABLE' });
  await ws.end();
  await stream.end();
});

t.test('a request deadline on the stream', async (t) => {
  const client = new Client(server.address, 'add', 'slow', { versionNumber: 1 });
  t.teardown(() => client.close());
  const stream = client.stream({ timeoutMs: 300 });
  const t0 = performance.now();
  const [late, quick] = await Promise.allSettled([
    stream.infer({ x1: f32([1500, 0, 0, 0]), x2: f32([0, 0, 0, 0]) }),
    stream.infer({ x1: f32([1, 0, 0, 0]), x2: f32([1, 1, 1, 1]) }),
  ]);
  t.match(late, { status: 'rejected', reason: { code: 'E_DEADLINE_EXCEEDED' } });
  t.ok(performance.now() - t0 < 1200, 'at the deadline');
  t.match(quick, { status: 'fulfilled' });
  await stream.end();
});

t.test('timeout_ms reaches the engine: the reply carries E_DEADLINE_EXCEEDED', async (t) => {
  const { client, call, status } = rawStream(server.address);
  const f32Bytes = (v: number[]) => Buffer.from(Float32Array.from(v).buffer);
  const replies: WireStreamReply[] = [];
  call.on('data', (r: WireStreamReply) => replies.push(r));
  const t0 = performance.now();
  call.write({
    id: 1,
    timeout_ms: 200,
    servable_spec: { name: 'add', method_name: 'slow', version_number: 1 },
    instances: [{ items: { x1: { dtype: 11, shape: { dims: [2, 2] }, data: f32Bytes([1500, 0, 0, 0]) }, x2: { dtype: 11, shape: { dims: [2, 2] }, data: f32Bytes([0, 0, 0, 0]) } } }],
  });
  call.end();
  const s = await status;
  t.equal(s.code, 0);
  t.equal(replies.length, 1);
  t.equal(Number(replies[0]!.id), 1);
  t.equal(replies[0]!.error?.code, 'E_DEADLINE_EXCEEDED', 'the engine enforced the request deadline');
  t.ok(performance.now() - t0 < 1200, 'answered at the deadline');
  client.close();
});

t.test('a client that stops reading replies stops the server reading requests', async (t) => {
  const { client, call, status } = rawStream(server.address);
  const before = server.stats.streamRequests;
  // Read one reply, then stop reading. (A grpc-js call whose readable side was never read
  // keeps taking HTTP/2 data into its own memory; one read makes it honour flow control.)
  const replies = new Set<number>();
  call.on('data', (r: WireStreamReply) => {
    replies.add(Number(r.id));
    if (replies.size === 1) call.pause();
  });
  const payload = Buffer.alloc(64 * 1024, 7);
  const total = 1000;
  for (let id = 1; id <= total; id++) {
    call.write({ id, servable_spec: { name: 'echo', method_name: 'echo' }, instances: [{ items: { x: { dtype: 3, shape: { dims: [payload.length] }, data: payload } } }] });
  }
  await new Promise((r) => setTimeout(r, 1500));
  const readWhilePaused = server.stats.streamRequests - before;
  t.ok(readWhilePaused <= WINDOW + 16 + 64, `the server read ${readWhilePaused} of ${total} requests while the client read one reply`);
  t.ok(replies.size < 100, `the client took ${replies.size} replies`);
  call.resume();
  call.end();
  const s = await status;
  t.equal(s.code, 0);
  t.equal(replies.size, total, 'all answered once the client reads');
  client.close();
});

t.test('a repeated id in flight fails the whole stream with INVALID_ARGUMENT', async (t) => {
  const { client, call, status } = rawStream(server.address);
  const req = { id: 7, servable_spec: { name: 'add', method_name: 'slow', version_number: 1 }, instances: [{ items: { x1: { dtype: 11, shape: { dims: [2, 2] }, data: Buffer.from(Float32Array.of(300, 0, 0, 0).buffer) }, x2: { dtype: 11, shape: { dims: [2, 2] }, data: Buffer.alloc(16) } } }] };
  call.write(req);
  call.write(req);
  const s = await status;
  t.equal(s.code, 3, 'INVALID_ARGUMENT');
  t.match(s.details, /request id 7 is already in flight/);
  t.same(s.metadata.get('actorserve-error-code'), ['E_INVALID_ARGUMENT']);
  client.close();
});

t.test('cancel rejects pending requests and ends the stream on the server', async (t) => {
  const client = new Client(server.address, 'add', 'slow', { versionNumber: 1 });
  t.teardown(() => client.close());
  const stream = client.stream();
  const pending = stream.infer({ x1: f32([500, 0, 0, 0]), x2: f32([0, 0, 0, 0]) });
  await new Promise((r) => setTimeout(r, 100));
  stream.cancel();
  await t.rejects(pending, { code: 'E_STOPPED' });
  await t.rejects(stream.infer({ x1: f32([1, 0, 0, 0]), x2: f32([0, 0, 0, 0]) }), { code: 'E_STOPPED' });
  await new Promise((r) => setTimeout(r, 200));
  t.equal(server.stats.activeStreams, 0);
});

t.test('server close answers what a stream has read, then ends it with UNAVAILABLE', async (t) => {
  const own = await startGrpcServer(fx.engine, '127.0.0.1:0', { closeTimeoutMs: 5000 });
  const client = new Client(own.address, 'add', 'slow', { versionNumber: 1 });
  t.teardown(() => client.close());
  const stream = client.stream();
  const inflight = [stream.infer({ x1: f32([300, 0, 0, 0]), x2: f32([1, 1, 1, 1]) }), stream.infer({ x1: f32([300, 0, 0, 0]), x2: f32([2, 2, 2, 2]) })];
  // both read by the server (a fixed 100 ms wait missed the second on a loaded machine: it was
  // still unread when the close began, so it was rightly not run)
  for (let waited = 0; own.stats.streamRequests < 2 && waited < 10_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  t.equal(own.stats.streamRequests, 2, 'both requests read');
  const closing = own.close();
  const settled = await Promise.allSettled(inflight);
  t.same(settled.map((s) => s.status), ['fulfilled', 'fulfilled'], 'requests in flight were answered');
  await closing;
  await t.rejects(stream.end(), { code: 'E_STOPPED', message: /shutting down/ });
  await t.rejects(stream.infer({ x1: f32([1, 0, 0, 0]), x2: f32([0, 0, 0, 0]) }), { code: /E_STOPPED|E_INVALID_ARGUMENT/ });
});

t.test('the pipelined stream over a unix socket', async (t) => {
  const sock = path.join(tmpdir(), `asgrpc-stream-${process.pid}-${Date.now()}.sock`);
  const u = await startGrpcServer(fx.engine, `unix:${sock}`, { streamWindow: 16 });
  t.teardown(() => u.close());
  await pipelined(t, u.address, 2000);
  t.ok(u.stats.peakStreamInflight <= 16, `window held (peak ${u.stats.peakStreamInflight})`);
});
