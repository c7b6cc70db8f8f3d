// TS stage functions on the stage pool: per-instance and batched forms, failures, model.call.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import type { Instance } from '../../dist/engine/tensor.js';
import { TASKS_PER_THREAD } from '../../dist/actors/stage-pool.js';
import { addModel, matmulSubgraphModel, matmulWeight } from '../../dist/servables/example-models.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('stages');
fx.config(
  'funcs',
  `
import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx', modelFormat: 'onnx', maxBatchSize: 4 });

/** Per-instance: doubles x; fails on purpose when x[0] is negative. */
export function double(x: Tensor): Tensor {
  const data = x.data as Float32Array;
  if (data[0]! < 0) throw new Error('negative input');
  return { dtype: 'float32', shape: x.shape, data: data.map((v) => v * 2) };
}

/** Batched: receives a list of instances; tags each with the size of the batch it came in. */
export function withBatchSize(instances: Tensor[][]): Tensor[][] {
  return instances.map(([x]) => [x!, { dtype: 'int32', shape: [], data: Int32Array.of(instances.length) }]);
}

/** Returns plain JS values, converted to tensors by the engine. */
export function plainValues(x: Tensor) {
  return [3.5, 7n, true, 'text', new Int16Array([1, 2])];
}

export function wrongCount(x: Tensor) {
  return [x, x];
}

export async function callSubgraphOne(x: Tensor): Promise<Tensor> {
  const [y] = await model.call([x, x]);
  return y!;
}

register.method('double_add', { outputs: ['y'] }, (x1, x2) => {
  const d = register.addStage(double, [x1]);
  return register.addStage(model, [d, x2]);
});
register.method('batched', { outputs: ['x', 'n'] }, (x) => register.addStage(withBatchSize, [x], { outputsCount: 2, batchSize: 2 }));
register.method('batched_auto', { outputs: ['x', 'n'] }, (x) => register.addStage(withBatchSize, [x], { outputsCount: 2, batchSize: 0 }));
register.method('plain', { outputs: ['a', 'b', 'c', 'd', 'e'] }, (x) => register.addStage(plainValues, [x], { outputsCount: 5 }));
register.method('wrong_count', { outputs: ['y'] }, (x) => register.addStage(wrongCount, [x]));
register.method('call_model', { outputs: ['y'] }, (x) => register.addStage(callSubgraphOne, [x]));
register.method('passthrough', { outputs: ['x'] }, (x) => x);
`,
);
fx.model('funcs', 1, 'add.onnx', addModel({ batch: 'N' }));
fx.config(
  'subgraphs',
  `
import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: ['m0.onnx', 'm1.onnx'], withBatchDim: false });
export async function second(y: Tensor): Promise<Tensor> {
  const [z] = await model.call([y], { subgraph: 1 });
  return z!;
}
export async function badSubgraph(y: Tensor): Promise<Tensor> {
  const [z] = await model.call([y], { subgraph: 2 });
  return z!;
}
register.method('sub1', { outputs: ['z'] }, (y) => register.addStage(second, [y]));
register.method('bad_subgraph', { outputs: ['z'] }, (y) => register.addStage(badSubgraph, [y]));
`,
);
fx.config(
  'sleepy',
  `
import { appendFileSync } from 'node:fs';
import { register, type Tensor } from 'actorserve';
/** Logs that it ran (one line per call), then takes 600 ms. */
export async function slowLogged(x: Tensor): Promise<Tensor> {
  appendFileSync(new URL('./runs.log', import.meta.url), 'ran\\n');
  await new Promise((r) => setTimeout(r, 600));
  return x;
}
register.method('slow', { outputs: ['x'] }, (x) => register.addStage(slowLogged, [x]));
`,
);
// A stateless model whose partial batches wait 10 s: a lone model.call stays queued.
fx.config(
  'queued_call',
  `
import { appendFileSync } from 'node:fs';
import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx', maxBatchSize: 8, maxQueueDelayMs: 10_000 });
/** Calls the model and logs how the call settled (one line per call). */
export async function callQueued(x: Tensor): Promise<Tensor> {
  const log = (line: string) => appendFileSync(new URL('./calls.log', import.meta.url), line + '\\n');
  try {
    const [y] = await model.call([x, x]);
    log('resolved');
    return y!;
  } catch (err) {
    log(\`rejected \${(err as { code?: string }).code} \${(err as Error).message}\`);
    throw err;
  }
}
register.method('call_queued', { outputs: ['y'] }, (x) => register.addStage(callQueued, [x]));
`,
);
fx.model('queued_call', 1, 'add.onnx', addModel({ batch: 'N' }));
fx.model('subgraphs', 1, 'm0.onnx', matmulSubgraphModel(128));
fx.model('subgraphs', 1, 'm1.onnx', matmulSubgraphModel(8));

const engine = new ServingServer();
engine.log = () => {};
t.before(() =>
  engine.startServables([
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'funcs', numParallelWorkers: 2 }),
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'subgraphs' }),
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'sleepy', numParallelWorkers: 1 }),
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'queued_call', numParallelWorkers: 1 }),
  ]),
);
t.teardown(async () => {
  await engine.stop();
  fx.remove();
});

t.test('a per-instance stage runs for each instance; a throw fails only its instance', async (t) => {
  const out = await engine.inferEach('funcs', 'double_add', [
    { x1: f32([1, 2, 3, 4]), x2: f32([1, 1, 1, 1]) },
    { x1: f32([-1, 2, 3, 4]), x2: f32([1, 1, 1, 1]) },
    { x1: f32([0, 0, 0, 0]), x2: f32([5, 5, 5, 5]) },
  ]);
  t.same([...((out[0] as Instance).y!.data as Float32Array)], [3, 5, 7, 9]);
  t.ok(out[1] instanceof ServingError, 'instance 1 failed');
  t.equal((out[1] as ServingError).code, 'E_STAGE_FAILED');
  t.match((out[1] as ServingError).message, /Function 'double' failed: negative input/);
  t.same([...((out[2] as Instance).y!.data as Float32Array)], [5, 5, 5, 5]);
});

t.test('a batched stage receives lists of up to batchSize instances', async (t) => {
  const out = await engine.infer('funcs', 'batched', [1, 2, 3, 4, 5].map((k) => ({ x: f32([k, k, k, k]) })));
  t.same(out.map((o) => (o.n!.data as Int32Array)[0]), [2, 2, 2, 2, 1], 'batches of 2, 2 and 1');
  t.same(out.map((o) => (o.x!.data as Float32Array)[0]), [1, 2, 3, 4, 5], 'instances stay in order');
  const auto = await engine.infer('funcs', 'batched_auto', [1, 2, 3].map((k) => ({ x: f32([k, k, k, k]) })));
  t.same(auto.map((o) => (o.n!.data as Int32Array)[0]), [3, 3, 3], 'batchSize 0: the system picks (the whole request)');
});

t.test('plain JS return values become tensors', async (t) => {
  const [o] = await engine.infer('funcs', 'plain', [{ x: f32([1, 2, 3, 4]) }]);
  t.same([o!.a!.dtype, [...(o!.a!.data as Float64Array)]], ['float64', [3.5]]);
  t.same([o!.b!.dtype, [...(o!.b!.data as BigInt64Array)]], ['int64', [7n]]);
  t.same([o!.c!.dtype, [...(o!.c!.data as Uint8Array)]], ['bool', [1]]);
  t.equal(o!.d!.dtype, 'string');
  t.equal(Buffer.from((o!.d!.data as Uint8Array[])[0]!).toString(), 'text');
  t.same([o!.e!.dtype, o!.e!.shape, [...(o!.e!.data as Int16Array)]], ['int16', [2], [1, 2]]);
});

t.test('a stage returning the wrong number of outputs is an explicit stage error', async (t) => {
  const [r] = await engine.inferEach('funcs', 'wrong_count', [{ x: f32([1, 2, 3, 4]) }]);
  t.ok(r instanceof ServingError);
  t.equal((r as ServingError).code, 'E_STAGE_FAILED');
  t.match((r as ServingError).message, /must return 1 value/);
});

t.test('a method may return its inputs without stages', async (t) => {
  const [o] = await engine.infer('funcs', 'passthrough', [{ x: f32([9, 8, 7, 6]) }]);
  t.same([...(o!.x!.data as Float32Array)], [9, 8, 7, 6]);
});

t.test('model.call from a stage runs the model (subgraph 0 by default)', async (t) => {
  const [o] = await engine.infer('funcs', 'call_model', [{ x: f32([1, 2, 3, 4]) }]);
  t.same([...(o!.y!.data as Float32Array)], [2, 4, 6, 8]);
});

t.test('model.call with subgraph 1 runs the second graph of a multi-file model', async (t) => {
  const y = new Float32Array(8 * 96).map((_, i) => (i % 7) - 3);
  const [o] = await engine.infer('subgraphs', 'sub1', [{ y: { dtype: 'float32', shape: [8, 96], data: y } }]);
  const w = matmulWeight();
  const expected = Array.from({ length: 16 }, (_, j) => {
    let s = 0;
    for (let r = 0; r < 8; r++) for (let k = 0; k < 96; k++) s += y[r * 96 + k]! * w[k * 16 + j]!;
    return s;
  });
  const z = o!.z!.data as Float32Array;
  t.same(o!.z!.shape, [16]);
  expected.forEach((e, j) => t.ok(Math.abs(z[j]! - e) < 1e-3, `z[${j}]`));
});

t.test('model.call with a subgraph the model does not have fails clearly', async (t) => {
  const [r] = await engine.inferEach('subgraphs', 'bad_subgraph', [{ y: { dtype: 'float32', shape: [8, 96], data: new Float32Array(768) } }]);
  t.ok(r instanceof ServingError);
  t.match((r as ServingError).message, /no subgraph 2; it has 2/);
});

t.test('stage tasks of requests that already ended are skipped, not run', async (t) => {
  // one stage thread runs TASKS_PER_THREAD tasks at once; twice as many requests with a 200 ms
  // deadline each: half start at once, the others wait for a free slot until ~600 ms, long
  // after their requests ended
  const log = path.join(fx.dir, 'sleepy', 'runs.log');
  const x = { x: f32([1, 2, 3, 4]) };
  const results = await Promise.allSettled(Array.from({ length: 2 * TASKS_PER_THREAD }, () => engine.infer('sleepy', 'slow', [x], { deadlineMs: 200 })));
  t.ok(results.every((r) => r.status === 'rejected' && (r.reason as ServingError).code === 'E_DEADLINE_EXCEEDED'), 'every request ended at its deadline');
  await new Promise((r) => setTimeout(r, 1500)); // the running tasks finish; the queued ones reach the thread
  const runs = readFileSync(log, 'utf8').split('\n').filter(Boolean).length;
  // (fewer than TASKS_PER_THREAD when a slow machine started some of the first ones late)
  t.ok(runs >= 1 && runs <= TASKS_PER_THREAD, `only tasks that started before the deadline ran the function (${runs} of ${2 * TASKS_PER_THREAD})`);
  const [out] = await engine.infer('sleepy', 'slow', [x], { deadlineMs: 5000 });
  t.same([...(out!.x!.data as Float32Array)], [1, 2, 3, 4], 'the stage thread serves new requests');
  t.equal(readFileSync(log, 'utf8').split('\n').filter(Boolean).length, runs + 1);
});

t.test("a stage function's model.call of a stateless model, still queued at its request's deadline, rejects instead of hanging", async (t) => {
  const log = path.join(fx.dir, 'queued_call', 'calls.log');
  const err = await engine.infer('queued_call', 'call_queued', [{ x: f32([1, 2, 3, 4]) }], { deadlineMs: 200 }).then(() => undefined, (e: unknown) => e);
  t.equal((err as ServingError).code, 'E_DEADLINE_EXCEEDED', 'the request ended at its deadline');
  // the call waits in its 10 s batch window; it must settle long before that (bounded poll)
  const lines = async (): Promise<string[]> => {
    for (let i = 0; i < 60; i++) {
      const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
      if (text !== '') return text.split('\n').filter(Boolean);
      await new Promise((r) => setTimeout(r, 50));
    }
    return [];
  };
  const got = await lines();
  t.equal(got.length, 1, 'the stage function saw its call settle');
  t.match(got[0] ?? '', /^rejected E_DEADLINE_EXCEEDED /, 'the call rejected with E_DEADLINE_EXCEEDED (not left pending, not run)');
});
