// Stateful sequences over every transport (docs/sequences.md), on the bundled `rnn` example
// served by two device actors: MindSpore REST (top-level "parameters"), MindSpore gRPC Predict
// (metadata sequence-id / -start / -end), KServe v2 REST and gRPC (request parameters). Several
// sequences at once, interleaved, each give the plain-TS reference's outputs; one sequence can
// even hop between transports; every refusal is a 400 / INVALID_ARGUMENT that says why.
import { status } from '@grpc/grpc-js';
import { pack } from 'msgpackr';
import t, { type Test } from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { startRestfulServer } from '../../dist/transports/rest/server.js';
import { startGrpcServer } from '../../dist/transports/grpc/server.js';
import { Client } from '../../dist/transports/grpc/client.js';
import type { WirePredictRequest } from '../../dist/transports/grpc/proto.js';
import { BUNDLED_SERVABLES } from '../helpers/fixtures.js';
import { type StepOutput, checkAgainstReference, sequenceInputs } from '../helpers/sequences.js';
import { request } from './rest/fixtures/rest.js';
import { postJson } from './rest/fixtures/kserve.js';
import { RawClient, text, wireF32 } from './grpc/fixtures/raw.js';
import { type Msg, OipClient, rawOf } from './grpc/fixtures/oip-client.js';

const engine = new ServingServer();
engine.log = () => {};
let port = 0;
let grpcAddress = '';
let ms: RawClient;
let oip: OipClient;

t.before(async () => {
  await ensureExampleModels(BUNDLED_SERVABLES);
  await engine.startServables(new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES, servableName: 'rnn', deviceIds: [0, 1] }));
  const rest = await startRestfulServer(engine, '127.0.0.1:0');
  engine.attachListener(rest);
  port = rest.port;
  const grpc = await startGrpcServer(engine, '127.0.0.1:0');
  engine.attachListener(grpc);
  grpcAddress = grpc.address;
  ms = new RawClient(grpc.address);
  oip = new OipClient(grpc.address);
});
t.teardown(async () => {
  ms?.close();
  oip?.close();
  await engine.stop();
});

type Flags = { start?: boolean; end?: boolean };
type Id = string | number;
interface Failure {
  readonly status: number | string;
  readonly message: string;
}

const params = (id: Id, f: Flags) => ({ sequence_id: id, ...(f.start ? { sequence_start: true } : {}), ...(f.end ? { sequence_end: true } : {}) });

/** MindSpore REST: POST /model/rnn:step with top-level "parameters". */
async function restStep(id: Id, x: Float32Array, f: Flags = {}): Promise<StepOutput | Failure> {
  const body = JSON.stringify({ instances: [{ x: [...x] }], parameters: params(id, f) });
  const r = await request({ port }, '/model/rnn:step', { body, headers: { 'content-type': 'application/json' } });
  const json = JSON.parse(r.body.toString('utf8')) as { instances?: { y: number[]; steps: number[] }[]; error_msg?: string };
  if (r.status !== 200) return { status: r.status, message: json.error_msg ?? '' };
  return { y: json.instances![0]!.y, steps: json.instances![0]!.steps[0]! };
}

/** KServe v2 REST: POST /v2/models/rnn/infer with request parameters. */
async function v2RestStep(id: Id, x: Float32Array, f: Flags = {}): Promise<StepOutput | Failure> {
  const r = await postJson(port, '/v2/models/rnn/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [...x] }], parameters: params(id, f) });
  if (r.status !== 200) return { status: r.status, message: (r.json as { error?: string }).error ?? '' };
  const out = (name: string) => r.json.outputs!.find((o) => o.name === name)!.data as number[];
  return { y: out('y'), steps: out('steps')[0]! };
}

/** MindSpore gRPC Predict with sequence metadata. */
async function grpcStep(id: Id, x: Float32Array, f: Flags = {}): Promise<StepOutput | Failure> {
  const req: WirePredictRequest = { servable_spec: { name: 'rnn', method_name: 'step', version_number: 0 }, instances: [{ items: { x: wireF32([...x], [4]) } }] };
  const headers: Record<string, string> = { 'sequence-id': String(id) };
  if (f.start) headers['sequence-start'] = 'true';
  if (f.end) headers['sequence-end'] = 'true';
  const { reply, codes } = await ms.predict(req, 10_000, headers);
  if (reply.error_msg && reply.error_msg.length > 0) return { status: codes[0] ?? '', message: text(reply.error_msg[0]!.error_msg) };
  const items = reply.instances![0]!.items!;
  const f32 = (b: Uint8Array) => [...new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))];
  return { y: f32(items['y']!.data!), steps: f32(items['steps']!.data!)[0]! };
}

/** KServe v2 gRPC ModelInfer with request parameters. */
async function v2GrpcStep(id: Id, x: Float32Array, f: Flags = {}): Promise<StepOutput | Failure> {
  const parameters: Msg = { sequence_id: typeof id === 'number' ? { int64_param: id } : { string_param: id } };
  if (f.start) parameters['sequence_start'] = { bool_param: true };
  if (f.end) parameters['sequence_end'] = { bool_param: true };
  const r = await oip.call('ModelInfer', { model_name: 'rnn', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [rawOf(x)], parameters });
  if (r.error) return { status: r.error.code, message: r.error.details };
  const names = (r.reply['outputs'] as { name: string }[]).map((o) => o.name);
  const raw = (name: string) => {
    const b = (r.reply['raw_output_contents'] as Buffer[])[names.indexOf(name)]!;
    return [...new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))];
  };
  return { y: raw('y'), steps: raw('steps')[0]! };
}

const TRANSPORTS = { rest: restStep, 'v2 rest': v2RestStep, grpc: grpcStep, 'v2 grpc': v2GrpcStep } as const;
type StepFn = (id: Id, x: Float32Array, f?: Flags) => Promise<StepOutput | Failure>;

function ok(t: Test, r: StepOutput | Failure, what: string): StepOutput {
  if ('status' in r) t.fail(`${what}: failed with ${r.status}: ${r.message}`);
  return r as StepOutput;
}

async function run(t: Test, stepFn: StepFn, id: Id, xs: readonly Float32Array[]): Promise<StepOutput[]> {
  const got: StepOutput[] = [];
  for (let k = 0; k < xs.length; k++) got.push(ok(t, await stepFn(id, xs[k]!, { start: k === 0, end: k === xs.length - 1 }), `${id} step ${k}`));
  return got;
}

for (const [name, stepFn] of Object.entries(TRANSPORTS)) {
  t.test(`${name}: 4 sequences at once, interleaved, each as if alone; refusals`, async (t) => {
    const base = name.replace(' ', '-');
    const xs = Array.from({ length: 4 }, (_, s) => sequenceInputs(200 + s, 5));
    const ids: Id[] = xs.map((_, s) => (s % 2 === 0 ? `${base}-${s}` : 7000 + s + 10 * Object.keys(TRANSPORTS).indexOf(name)));
    const got = await Promise.all(xs.map((x, s) => run(t, stepFn, ids[s]!, x)));
    got.forEach((g, s) => checkAgainstReference(t, `${name} ${ids[s]}`, xs[s]!, g));

    const invalid = name.includes('grpc') ? (name === 'grpc' ? 'E_INVALID_ARGUMENT' : status.INVALID_ARGUMENT) : 400;
    const refused = (r: StepOutput | Failure, pattern: RegExp, what: string) => {
      t.ok('status' in r, `${what}: refused`);
      if (!('status' in r)) return;
      t.equal(r.status, invalid, `${what}: ${invalid}`);
      t.match(r.message, pattern, `${what}: says why`);
    };
    const x = xs[0]![0]!;
    refused(await stepFn(`${base}-unknown`, x), /is not live .*send sequence_start/, 'an unknown id without start');
    ok(t, await stepFn(`${base}-dup`, x, { start: true }), 'a start');
    refused(await stepFn(`${base}-dup`, x, { start: true }), /already live; a second start is refused/, 'a second start');
    ok(t, await stepFn(`${base}-dup`, x, { end: true }), 'the end');
    refused(await stepFn(`${base}-dup`, x), /is not live/, 'a step after the end');
    t.equal(engine.runtime('rnn').stats.liveSequences, 0, 'nothing left live');
  });
}

t.test('one sequence hops between transports: the state is the actor\'s, not the connection\'s', async (t) => {
  const xs = sequenceInputs(300, 8);
  const fns = Object.values(TRANSPORTS);
  const got: StepOutput[] = [];
  for (let k = 0; k < xs.length; k++) got.push(ok(t, await fns[k % fns.length]!('hopper', xs[k]!, { start: k === 0, end: k === xs.length - 1 }), `hop ${k}`));
  checkAgainstReference(t, 'hopper', xs, got);
});

t.test('the TS gRPC client sends a sequence as metadata', async (t) => {
  const client = new Client(grpcAddress, 'rnn', 'step');
  t.teardown(() => client.close());
  const xs = sequenceInputs(800, 4);
  const got: StepOutput[] = [];
  for (let k = 0; k < xs.length; k++) {
    const [out] = await client.infer([{ x: { dtype: 'float32', shape: [4], data: xs[k]! } }], { sequence: { id: 'ts-client', start: k === 0, end: k === xs.length - 1 } });
    got.push({ y: out!.y!.data as Float32Array, steps: (out!.steps!.data as Float32Array)[0]! });
  }
  checkAgainstReference(t, 'ts client', xs, got);
  const err = await client.infer([{ x: { dtype: 'float32', shape: [4], data: xs[0]! } }], { sequence: { id: 'ts-client' } }).then(() => undefined, (e: unknown) => e);
  t.match((err as Error).message, /is not live/);
});

t.test('MindSpore REST msgpack bodies carry "parameters" too', async (t) => {
  const xs = sequenceInputs(700, 3);
  const got: StepOutput[] = [];
  for (let k = 0; k < xs.length; k++) {
    const body = pack({ instances: [{ x: [...xs[k]!] }], parameters: params('msgpack', { start: k === 0, end: k === xs.length - 1 }) });
    const r = await request({ port }, '/model/rnn:step', { body, headers: { 'content-type': 'application/msgpack' } });
    t.equal(r.status, 200, r.body.toString('utf8'));
    const json = JSON.parse(r.body.toString('utf8')) as { instances: { y: number[]; steps: number[] }[] };
    got.push({ y: json.instances[0]!.y, steps: json.instances[0]!.steps[0]! });
  }
  checkAgainstReference(t, 'msgpack', xs, got);
});

t.test('malformed sequence parameters are 400s', async (t) => {
  const post = (parameters: unknown) =>
    request({ port }, '/model/rnn:step', { body: JSON.stringify({ instances: [{ x: [0, 0, 0, 0] }], parameters }), headers: { 'content-type': 'application/json' } });
  for (const [parameters, pattern] of [
    [{ sequence_id: 'a', sequence_start: 'yes' }, /sequence_start must be a boolean/],
    [{ sequence_start: true }, /need a sequence_id/],
    [{ sequence_id: [1] }, /sequence_id must be an integer or a string/],
    [{ sequence_id: 1.5, sequence_start: true }, /integer >= 1/],
    ['x', /parameters.*must be an object/],
  ] as const) {
    const r = await post(parameters);
    t.equal(r.status, 400, JSON.stringify(parameters));
    t.match(r.body.toString('utf8'), pattern);
  }
  // without parameters, a stateful method says what it needs
  const r = await request({ port }, '/model/rnn:step', { body: '{"instances":[{"x":[0,0,0,0]}]}', headers: { 'content-type': 'application/json' } });
  t.equal(r.status, 400);
  t.match(r.body.toString('utf8'), /must name its sequence/);
  const g = await grpcStep('x', new Float32Array(4), {}).then((r) => r);
  t.match(g, { status: 'E_INVALID_ARGUMENT', message: /is not live/ });
  const bad = await ms.predict({ servable_spec: { name: 'rnn', method_name: 'step' }, instances: [{ items: { x: wireF32([0, 0, 0, 0], [4]) } }] }, 10_000, { 'sequence-id': '3', 'sequence-start': 'maybe' });
  t.equal(bad.codes[0], 'E_INVALID_ARGUMENT');
  t.match(text(bad.reply.error_msg![0]!.error_msg), /sequence-start must be true or false/);
});

t.test('KServe ModelStreamInfer: steps of 3 sequences written at once, interleaved, run in order', async (t) => {
  const call = oip.stream();
  const replies: Msg[] = [];
  call.on('data', (m: Msg) => replies.push(m));
  call.on('error', () => undefined);
  const ended = new Promise<{ code: number }>((resolve) => call.on('status', resolve));
  const steps = 6;
  const xs = Array.from({ length: 3 }, (_, s) => sequenceInputs(500 + s, steps));
  for (let k = 0; k < steps; k++) {
    xs.forEach((x, s) => {
      const parameters: Msg = { sequence_id: { string_param: `stream-${s}` } };
      if (k === 0) parameters['sequence_start'] = { bool_param: true };
      if (k === steps - 1) parameters['sequence_end'] = { bool_param: true };
      call.write({ model_name: 'rnn', id: `${s}/${k}`, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [rawOf(x[k]!)], parameters });
    });
  }
  for (let waited = 0; replies.length < 3 * steps && waited < 20_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  call.end();
  t.equal((await ended).code, status.OK);
  t.equal(replies.length, 3 * steps, 'every step answered');
  const got: StepOutput[][] = xs.map(() => []);
  for (const r of replies) {
    t.equal(r['error_message'], '', 'no step failed');
    const res = r['infer_response'] as Msg;
    const [s, k] = String(res['id']).split('/').map(Number) as [number, number];
    const names = (res['outputs'] as { name: string }[]).map((o) => o.name);
    const raw = (name: string) => {
      const b = (res['raw_output_contents'] as Buffer[])[names.indexOf(name)]!;
      return [...new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))];
    };
    got[s]![k] = { y: raw('y'), steps: raw('steps')[0]! };
  }
  xs.forEach((x, s) => checkAgainstReference(t, `stream-${s}`, x, got[s]!));
  t.equal(engine.runtime('rnn').stats.liveSequences, 0);
});
