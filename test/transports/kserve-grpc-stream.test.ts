// Triton's ModelStreamInfer on actorserve: pipelined requests on one stream with replies in
// completion order matched by id, an error in the middle answered with error_message (the
// stream stays open), the bounded window, the client cancelling, server shutdown; from a plain
// grpc-js client built from the proto and from the TS client's KServeStream.
import type { ClientDuplexStream, Metadata } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import t from 'tap';
import { startGrpcServer, type GrpcServer } from '../../dist/transports/grpc/server.js';
import { KServeClient } from '../../dist/transports/grpc/client.js';
import { type EngineFixture, f32, startEngine } from './grpc/fixtures/engine.js';
import { type Msg, OipClient, rawOf } from './grpc/fixtures/oip-client.js';

const WINDOW = 8;
let fx: EngineFixture;
let server: GrpcServer;

t.before(async () => {
  fx = await startEngine('kserve-grpc-stream', { echoWorkers: 4 });
  server = await startGrpcServer(fx.engine, '127.0.0.1:0', { streamWindow: WINDOW });
});
t.teardown(async () => {
  await server?.close();
  await fx?.stop();
});

/** Polls `cond` every 20 ms, at most `ms`; resolves with its last value. */
async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  for (let waited = 0; !cond() && waited < ms; waited += 20) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

/** The stream's replies as they come, and its final status. */
function collect(call: ClientDuplexStream<Msg, Msg>) {
  const replies: Msg[] = [];
  call.on('data', (m: Msg) => replies.push(m));
  call.on('error', () => undefined);
  const ended = new Promise<{ code: number; details: string; metadata: Metadata }>((resolve) => call.on('status', resolve));
  return { replies, ended };
}

const jitter = (i: number, id: string): Msg => ({
  model_name: 'echo.jitter',
  id,
  inputs: [{ name: 'x', datatype: 'INT32', shape: [1] }],
  raw_input_contents: [rawOf(Int32Array.of(i))],
});

/** add.slow (version 1): its stage sleeps x1[0] ms. */
const slow = (ms: number, id: string): Msg => ({
  model_name: 'add.slow',
  model_version: '1',
  id,
  inputs: [
    { name: 'x1', datatype: 'FP32', shape: [1, 2, 2] },
    { name: 'x2', datatype: 'FP32', shape: [1, 2, 2] },
  ],
  raw_input_contents: [rawOf(Float32Array.of(ms, 0, 0, 0)), rawOf(Float32Array.of(1, 1, 1, 1))],
});

t.test('pipelined requests: every reply carries its id; an error in the middle leaves the stream open', async (t) => {
  const oip = new OipClient(server.address);
  t.teardown(() => oip.close());
  const call = oip.stream();
  const { replies, ended } = collect(call);
  const N = 200;
  for (let i = 0; i < N; i++) {
    if (i === 100) call.write({ ...jitter(i, `r${i}`), model_name: 'nope' });
    else if (i === 101) call.write({ ...jitter(i, `r${i}`), raw_input_contents: [Buffer.alloc(3)] });
    else call.write(jitter(i, `r${i}`));
  }
  t.ok(await until(() => replies.length === N), `all ${N} answered (got ${replies.length})`);
  // more requests after the errors, on the same stream
  call.write(jitter(7, 'after'));
  t.ok(await until(() => replies.length === N + 1), 'a request after the errors is answered');
  call.end();
  const s = await ended;
  t.equal(s.code, status.OK, 'the stream ends with OK');

  const byId = new Map(replies.map((r) => [(r['infer_response'] as Msg)['id'] as string, r]));
  t.equal(byId.size, N + 1, 'one reply per id');
  let wrong = 0;
  for (let i = 0; i < N; i++) {
    if (i === 100 || i === 101) continue;
    const r = byId.get(`r${i}`)!;
    const res = r['infer_response'] as Msg;
    const raw = (res['raw_output_contents'] as Buffer[])[0]!;
    if (r['error_message'] !== '' || raw.readInt32LE(0) !== i || res['model_name'] !== 'echo.jitter') wrong++;
  }
  t.equal(wrong, 0, 'every success has its own value');
  const order = replies.map((r) => (r['infer_response'] as Msg)['id']);
  t.not(order.join(), [...Array(N).keys()].map((i) => `r${i}`).concat('after').join(), 'replies came in completion order (jitter), not request order');

  const unknown = byId.get('r100')!;
  t.match(unknown['error_message'], /nope/, 'unknown model: error_message');
  t.match(unknown['infer_response'], { id: 'r100', model_name: 'nope', parameters: { 'actorserve-error-code': { string_param: 'E_UNKNOWN_SERVABLE' } } });
  const short = byId.get('r101')!;
  t.match(short['error_message'], /needs 4 bytes, got 3/, 'bad raw size: error_message');
  t.match(short['infer_response'], { id: 'r101', parameters: { 'actorserve-error-code': { string_param: 'E_INVALID_SHAPE' } } });
  t.equal((byId.get('after')!['infer_response'] as Msg)['raw_output_contents'] instanceof Array, true);
});

t.test('the window: at most streamWindow requests of a stream are in the engine', async (t) => {
  const own = await startGrpcServer(fx.engine, '127.0.0.1:0', { streamWindow: WINDOW });
  const oip = new OipClient(own.address);
  t.teardown(async () => {
    oip.close();
    await own.close();
  });
  const call = oip.stream();
  const { replies, ended } = collect(call);
  const N = WINDOW * 3;
  for (let i = 0; i < N; i++) call.write(slow(300, `w${i}`));
  call.end();
  t.ok(await until(() => replies.length === N, 30_000), `all ${N} answered`);
  t.equal((await ended).code, status.OK);
  t.equal(own.stats.peakStreamInflight, WINDOW, 'the server held exactly its window');
  t.ok(replies.every((r) => r['error_message'] === ''), 'all succeeded');
});

t.test('the client cancelling the stream ends it on the server and drops its work', async (t) => {
  const own = await startGrpcServer(fx.engine, '127.0.0.1:0');
  const oip = new OipClient(own.address);
  t.teardown(async () => {
    oip.close();
    await own.close();
  });
  const call = oip.stream();
  const { ended } = collect(call);
  for (let i = 0; i < 4; i++) call.write(slow(3000, `c${i}`));
  t.ok(await until(() => own.stats.streamRequests === 4), 'the server read the requests');
  call.cancel();
  t.equal((await ended).code, status.CANCELLED, 'the client sees CANCELLED');
  t.ok(await until(() => own.stats.activeStreams === 0), 'the server ended the stream');
  t.ok(await until(() => fx.engine.inflight === 0), 'the engine dropped the work in flight');
  // the server still serves streams
  const again = oip.stream();
  const r = collect(again);
  again.write(jitter(3, 'x'));
  again.end();
  t.equal((await r.ended).code, status.OK);
  t.equal(r.replies.length, 1);
});

t.test('server close answers the requests a stream has read, then ends it with UNAVAILABLE', async (t) => {
  const own = await startGrpcServer(fx.engine, '127.0.0.1:0', { closeTimeoutMs: 10_000 });
  const oip = new OipClient(own.address);
  t.teardown(() => oip.close());
  const call = oip.stream();
  const { replies, ended } = collect(call);
  call.write(slow(300, 'd1'));
  call.write(slow(300, 'd2'));
  t.ok(await until(() => own.stats.streamRequests === 2), 'both read');
  await own.close();
  const s = await ended;
  t.equal(s.code, status.UNAVAILABLE, 'UNAVAILABLE after the answers');
  t.equal(s.metadata.get('actorserve-error-code')[0], 'E_STOPPED');
  t.same(replies.map((r) => (r['infer_response'] as Msg)['id']).sort(), ['d1', 'd2'], 'the requests in flight were answered');
  t.ok(replies.every((r) => r['error_message'] === ''));
});

t.test('KServeStream: pipelined infers resolve by id; a failed one rejects with its code; the stream carries on', async (t) => {
  const client = new KServeClient(server.address);
  t.teardown(() => client.close());
  const stream = client.stream();
  const results = await Promise.allSettled(
    Array.from({ length: 60 }, (_, i) =>
      i === 30
        ? stream.infer('add', { x1: f32([1, 2, 3, 4], [1, 2, 2]), x2: { dtype: 'int32', shape: [1, 2, 2], data: [1, 2, 3, 4] } })
        : stream.infer('echo.jitter', { x: Int32Array.of(i) }, { id: `k${i}` }),
    ),
  );
  const bad = results[30]!;
  t.equal(bad.status, 'rejected');
  t.match((bad as PromiseRejectedResult).reason, { name: 'ServingError', code: 'E_INVALID_DTYPE' });
  let wrong = 0;
  results.forEach((r, i) => {
    if (i === 30) return;
    if (r.status !== 'fulfilled' || r.value.id !== `k${i}` || (r.value.outputs['y']!.data as Int32Array)[0] !== i) wrong++;
  });
  t.equal(wrong, 0, 'every other request resolved with its own output and id');
  t.equal(stream.inFlight, 0);
  const late = await stream.infer('add', { x1: f32([1, 2, 3, 4], [1, 2, 2]), x2: f32([1, 1, 1, 1], [1, 2, 2]) }, { version: 1 });
  t.same([...(late.outputs['y']!.data as Float32Array)], [2, 3, 4, 5], 'the stream still answers');
  t.equal(late.modelVersion, '1');
  await stream.end();
  await t.rejects(stream.infer('echo', { x: Int32Array.of(1) }), { code: 'E_INVALID_ARGUMENT', message: /ended/ });
});

t.test('KServeStream.cancel rejects pending requests with E_STOPPED', async (t) => {
  const client = new KServeClient(server.address);
  t.teardown(() => client.close());
  const stream = client.stream();
  const before = server.stats.streamRequests;
  const pending = stream.infer('add.slow', { x1: f32([2000, 0, 0, 0], [1, 2, 2]), x2: f32([0, 0, 0, 0], [1, 2, 2]) }, { version: '1' });
  t.ok(await until(() => server.stats.streamRequests > before), 'the server read it');
  stream.cancel();
  await t.rejects(pending, { code: 'E_STOPPED' });
  await t.rejects(stream.infer('echo', { x: Int32Array.of(1) }), { code: 'E_STOPPED' });
});
