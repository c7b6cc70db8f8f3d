// The stage pool's control plane (warm-up on every thread, health, stats, drain) and its
// model.call channel, on a real pool of two threads.
import t from 'tap';
import path from 'node:path';
import { StagePool } from '../../dist/actors/stage-pool.js';
import type { ModelCaller } from '../../dist/actors/stage-pool.js';
import type { StageWorkerStats } from '../../dist/actors/stage-protocol.js';
import type { FunctionStage } from '../../dist/engine/method-graph.js';
import { ServingError } from '../../dist/engine/errors.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('stage-control');
fx.config(
  'funcs',
  `import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });

/** Doubles x; fails on purpose when x[0] is negative; takes x[1] ms when x[1] > 100. */
export async function double(x: Tensor): Promise<Tensor> {
  const data = x.data as Float32Array;
  if (data[0]! < 0) throw new Error('negative input');
  if (data[1]! > 100) await new Promise((r) => setTimeout(r, data[1]));
  return { dtype: 'float32', shape: x.shape, data: data.map((v) => v * 2) };
}

/** Returns x, then throws from a timer: the thread dies with no task in flight. */
export function throwsLater(x: Tensor): Tensor {
  setTimeout(() => {
    throw new Error('thrown after the task');
  }, 10);
  return x;
}

export async function viaModel(x: Tensor): Promise<Tensor> {
  const [y] = await model.call([x, x]);
  return y!;
}`,
);
fx.config('broken', `throw new Error('this config is broken');`);
const configPath = path.join(fx.dir, 'funcs', 'servable_config.ts');
t.teardown(() => fx.remove());

const stage = (functionName: string): FunctionStage => ({ kind: 'function', functionName, tag: `Function '${functionName}'`, args: [], outputsCount: 1, batchSize: undefined });
const total = (threads: readonly StageWorkerStats[], key: 'tasksRun' | 'instancesRun' | 'instancesFailed' | 'modelCalls') =>
  threads.reduce((sum, s) => sum + s[key], 0);
/** Fails the test instead of hanging when a promise does not settle in time. */
const within = <T>(ms: number, p: Promise<T>, what: string) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))]);

t.test('warm-up loads the config on every thread; health and stats answer per thread', async (t) => {
  const pool = new StagePool(2, 100);
  t.teardown(() => pool.destroy());
  await pool.warmup(configPath);
  const before = await pool.stats();
  t.equal(before.threads.length, 2, 'two threads');
  t.same(
    before.threads.map((s) => s.modulesLoaded),
    [[configPath], [configPath]],
    'each thread imported the config (a warm-up task would reach whichever thread piscina picks)',
  );
  t.equal(total(before.threads, 'tasksRun'), 0);

  const health = await pool.health();
  t.equal(new Set(health.map((h) => h.threadId)).size, 2, 'two distinct threads');
  t.ok(health.every((h) => h.state === 'running' && h.tasksInFlight === 0));

  const results = await Promise.all([1, 2, -3, 4, 5].map((k) => pool.run(configPath, stage('double'), [[f32([k, 0, 0, 0])]])));
  t.match(results[2]![0], { code: 'E_STAGE_FAILED', message: /negative input/ });
  const after = await pool.stats();
  t.equal(total(after.threads, 'tasksRun'), 5, 'tasks run, summed over threads');
  t.equal(total(after.threads, 'instancesRun'), 4);
  t.equal(total(after.threads, 'instancesFailed'), 1);
  t.equal(after.queued, 0);
});

t.test('an idle thread answers its control port (it is not parked in Atomics.wait)', async (t) => {
  const pool = new StagePool(1, 100);
  t.teardown(() => pool.destroy());
  await pool.warmup(configPath);
  await pool.run(configPath, stage('double'), [[f32([1, 0, 0, 0])]]);
  await new Promise((r) => setTimeout(r, 100)); // the thread has nothing to do
  const [health] = await within(5000, pool.health(), 'health of an idle thread');
  t.equal(health!.tasksInFlight, 0);
});

t.test('warm-up fails like a load error when a thread cannot import the config', async (t) => {
  const pool = new StagePool(1, 100);
  t.teardown(() => pool.destroy());
  await t.rejects(pool.warmup(path.join(fx.dir, 'broken', 'servable_config.ts')), { code: 'E_LOAD_FAILED', message: /this config is broken/ });
});

for (const modelCalls of ['posted', 'comlink'] as const) {
  t.test(`model.call over the '${modelCalls}' channel: outputs, error codes and the count in stats`, async (t) => {
    const pool = new StagePool(1, 100, { modelCalls });
    t.teardown(() => pool.destroy());
    const seen: string[] = [];
    const callModel: ModelCaller = async (call) => {
      seen.push(`${call.modelKey}/${call.subgraph}/${call.instances.length}`);
      const [a, b] = call.instances[0]!;
      if ((a!.data as Float32Array)[0] === 0) throw new ServingError('E_DEADLINE_EXCEEDED', 'model.call after the request ended');
      const sum = (a!.data as Float32Array).map((v, i) => v + (b!.data as Float32Array)[i]!);
      return [[{ dtype: 'float32', shape: a!.shape, data: sum }]];
    };
    const [ok] = await pool.run(configPath, stage('viaModel'), [[f32([1, 2, 3, 4])]], { callModel });
    t.same([...((ok as { data: Float32Array }[])[0]!.data)], [2, 4, 6, 8]);
    t.match(seen, [/^.+\/0\/1$/], 'one call of one instance on subgraph 0');
    const [failed] = await pool.run(configPath, stage('viaModel'), [[f32([0, 0, 0, 0])]], { callModel });
    t.ok(failed instanceof ServingError);
    t.equal((failed as ServingError).code, 'E_DEADLINE_EXCEEDED', 'the code crosses the channel');
    t.equal(total((await pool.stats()).threads, 'modelCalls'), 2);
  });
}

t.test('drain finishes the tasks in hand, refuses new ones, then stops the pool', async (t) => {
  const pool = new StagePool(2, 100);
  await pool.warmup(configPath);
  const admitted = [1, 2, 3].map((k) => pool.run(configPath, stage('double'), [[f32([k, 300, 0, 0])]]));
  await new Promise((r) => setTimeout(r, 20));
  const drained = pool.drain();
  const [refused] = await pool.run(configPath, stage('double'), [[f32([1, 0, 0, 0])]]);
  t.match(refused, { code: 'E_STOPPED', message: /draining/ }, 'a task after drain() is refused');
  const outputs = (await Promise.all(admitted)).map(([o]) => [...(o as { data: Float32Array }[])[0]!.data]);
  t.same(outputs, [[2, 600, 0, 0], [4, 600, 0, 0], [6, 600, 0, 0]], 'the admitted tasks finished');
  const final = (await drained) ?? [];
  t.equal(final.length, 2, 'no timeout: every thread drained and gave its final stats');
  t.equal(total(final, 'tasksRun'), 3, 'final stats count the admitted tasks');
  t.same(await pool.health(), [], 'no thread is left');
});

t.test('a thread that dies outside any task is logged and replaced; the pool serves on', async (t) => {
  const lines: string[] = [];
  const pool = new StagePool(1, 100, { log: (line) => lines.push(line) });
  t.teardown(() => pool.destroy());
  await pool.warmup(configPath);
  const [before] = await pool.health();
  const [out] = await pool.run(configPath, stage('throwsLater'), [[f32([1, 2, 3, 4])]]);
  t.notOk(out instanceof ServingError, 'the task itself answered');
  const deadline = Date.now() + 10_000;
  while ((lines.length === 0 || (await pool.health()).length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.match(lines, [/a stage thread failed outside any task and was replaced: thrown after the task/]);
  const [after] = await pool.health();
  t.not(after?.threadId, before!.threadId, 'a new thread took its place');
  const [again] = await pool.run(configPath, stage('double'), [[f32([1, 0, 0, 0])]]);
  t.same([...(again as { data: Float32Array }[])[0]!.data], [2, 0, 0, 0]);
});
