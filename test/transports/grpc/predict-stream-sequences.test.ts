// Stateful sequences on actorserve.v1 PredictStream (PredictStreamRequest.sequence): one
// stream carries the steps of several sequences (numeric and string ids), every step sent
// before any reply, and each sequence gives exactly the plain-TS reference's outputs (its
// requests ran in the order they were sent); the wire message through a bare grpc-js call;
// refusals are per-request errors that leave the stream and the other sequences going.
import { Client as GrpcClient, Metadata, credentials } from '@grpc/grpc-js';
import t from 'tap';
import { ServingServer } from '../../../dist/server.js';
import { ServableStartConfig } from '../../../dist/engine/start-config.js';
import { ServingError } from '../../../dist/engine/errors.js';
import { ensureExampleModels } from '../../../dist/servables/generate-models.js';
import { startGrpcServer } from '../../../dist/transports/grpc/server.js';
import { Client } from '../../../dist/transports/grpc/client.js';
import { PREDICT_STREAM_PATH, type WireStreamReply, type WireStreamRequest, protos } from '../../../dist/transports/grpc/proto.js';
import { BUNDLED_SERVABLES } from '../../helpers/fixtures.js';
import { type StepOutput, checkAgainstReference, sequenceInputs, xTensor } from '../../helpers/sequences.js';
import { wireF32 } from './fixtures/raw.js';

const engine = new ServingServer();
engine.log = () => {};
let address = '';

t.before(async () => {
  await ensureExampleModels(BUNDLED_SERVABLES);
  await engine.startServables(new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES, servableName: 'rnn', deviceIds: [0, 1] }));
  const grpc = await startGrpcServer(engine, '127.0.0.1:0');
  engine.attachListener(grpc);
  address = grpc.address;
});
t.teardown(() => engine.stop());

const outputOf = (out: Record<string, { data: unknown }>): StepOutput => ({ y: out['y']!.data as Float32Array, steps: (out['steps']!.data as Float32Array)[0]! });

t.test('one stream carries several sequences, pipelined, each in order', async (t) => {
  const client = new Client(address, 'rnn', 'step');
  t.teardown(() => client.close());
  const stream = client.stream();
  const S = 6;
  const T = 5;
  const ids = Array.from({ length: S }, (_, s) => (s % 2 === 0 ? s + 1 : `stream-seq-${s}`));
  const xs = ids.map((_, s) => sequenceInputs(900 + s, T));
  // every step of every sequence written before any reply: step k of each sequence in turn
  const pending: Promise<StepOutput>[][] = ids.map(() => []);
  for (let k = 0; k < T; k++) {
    ids.forEach((id, s) => {
      pending[s]!.push(stream.infer([{ x: xTensor(xs[s]![k]!) }], { sequence: { id, start: k === 0, end: k === T - 1 } }).then(([out]) => outputOf(out!)));
    });
  }
  const got = await Promise.all(pending.map((p) => Promise.all(p)));
  ids.forEach((id, s) => checkAgainstReference(t, `sequence ${JSON.stringify(id)}`, xs[s]!, got[s]!));
  // a request of three instances is three steps of its sequence
  const three = sequenceInputs(950, 3);
  const outs = await stream.infer(
    three.map((x) => ({ x: xTensor(x) })),
    { sequence: { id: 'three', start: true, end: true } },
  );
  checkAgainstReference(t, 'three steps in one request', three, outs.map((o) => outputOf(o)));
  await stream.end();
  t.equal(engine.runtime('rnn').stats.liveSequences, 0, 'every sequence ended');
});

t.test('refusals are per request; the stream goes on', async (t) => {
  const client = new Client(address, 'rnn', 'step');
  t.teardown(() => client.close());
  const stream = client.stream();
  const x = sequenceInputs(960, 2);
  const refused = async (sequence: Parameters<typeof stream.infer>[1], pattern: RegExp, what: string) => {
    const err = await stream.infer([{ x: xTensor(x[0]!) }], sequence).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof ServingError, `${what}: refused`);
    t.equal((err as ServingError).code, 'E_INVALID_ARGUMENT', `${what}: E_INVALID_ARGUMENT`);
    t.match((err as Error).message, pattern, what);
  };
  await refused({ sequence: { id: 'never-started' } }, /sequence "never-started" of model 'rnn.onnx' is not live/, 'an unknown id without start');
  await refused({ sequence: { id: 0, start: true } }, /PredictStreamRequest.sequence: start and end need an id/, 'start with id 0');
  await refused({}, /runs a stateful model: a request must name its sequence/, 'no sequence');
  await refused({ sequence: { id: 'x'.repeat(257), start: true } }, /longer than 256/, 'a long id');
  const [a] = await stream.infer([{ x: xTensor(x[0]!) }], { sequence: { id: 'live', start: true } });
  await refused({ sequence: { id: 'live', start: true } }, /is already live; a second start is refused/, 'a second start');
  const [b] = await stream.infer([{ x: xTensor(x[1]!) }], { sequence: { id: 'live', end: true } });
  checkAgainstReference(t, 'the sequence beside the refusals', x, [outputOf(a!), outputOf(b!)]);
  await stream.end();
});

t.test('the wire message through a bare grpc-js call: string_id and number_id', async (t) => {
  const grpc = new GrpcClient(address, credentials.createInsecure());
  t.teardown(() => grpc.close());
  const { predictStream } = protos();
  const call = grpc.makeBidiStreamRequest(PREDICT_STREAM_PATH, predictStream.requestSerialize, predictStream.responseDeserialize, new Metadata(), {});
  const replies: WireStreamReply[] = [];
  const done = new Promise<void>((resolve, reject) => {
    call.on('data', (r: WireStreamReply) => replies.push(r));
    call.on('error', reject);
    call.on('end', resolve);
  });
  const xs = [sequenceInputs(970, 2), sequenceInputs(971, 2)];
  const req = (id: number, x: Float32Array, sequence: WireStreamRequest['sequence']): WireStreamRequest => ({
    id,
    servable_spec: { name: 'rnn', method_name: 'step', version_number: 0 },
    instances: [{ items: { x: wireF32([...x], [4]) } }],
    sequence,
  });
  call.write(req(1, xs[0]![0]!, { string_id: 'wire', start: true }));
  call.write(req(2, xs[1]![0]!, { number_id: 424242, start: true }));
  call.write(req(3, xs[0]![1]!, { string_id: 'wire', end: true }));
  call.write(req(4, xs[1]![1]!, { number_id: 424242, end: true }));
  call.write(req(5, xs[1]![1]!, { string_id: '424242' })); // "424242" is not 424242
  call.end();
  await done;
  const byId = new Map(replies.map((r) => [Number(r.id), r]));
  t.equal(byId.size, 5, 'every request answered');
  const f32 = (b: Uint8Array) => [...new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))];
  const step = (id: number): StepOutput => {
    const r = byId.get(id)!;
    t.notOk(r.error, `request ${id}: ${r.error?.message ?? 'ok'}`);
    const out = r.results![0]!.outputs!;
    return { y: f32(out['y']!.data!), steps: f32(out['steps']!.data!)[0]! };
  };
  checkAgainstReference(t, 'string_id', xs[0]!, [step(1), step(3)]);
  checkAgainstReference(t, 'number_id', xs[1]!, [step(2), step(4)]);
  t.equal(byId.get(5)!.error?.code, 'E_INVALID_ARGUMENT', 'a string id is not the number of the same digits');
  t.match(byId.get(5)!.error?.message, /sequence "424242" of model 'rnn.onnx' is not live/);
});
