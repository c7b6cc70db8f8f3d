/**
 * The stage pool boundary, measured from inside a stage function:
 *
 * 1. `model.call` round trips, hand-written correlation ('posted') against comlink, in the
 *    same run: a stage function makes N calls (1 or 16 in flight) and times each. The main
 *    thread answers either at once ("echo": the channel alone) or through the engine's `add`
 *    model on a device actor ("add model").
 * 2. A stage task's round trip with piscina's `atomics: 'sync'` (its default) against
 *    'disabled' (what the pool uses, so that idle threads read their control port).
 *
 * Contenders alternate within each round (load from other processes hits all alike); the
 * tables give the median over the rounds.
 *
 *   npm run build && node dist/perf/stage-model-call.js [--calls 3000] [--rounds 5]
 */
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ServableStartConfig, ServingServer, type Tensor } from '../index.js';
import { type ModelCaller, StagePool } from '../actors/stage-pool.js';
import { type ModelCallChannel, type RunStageTask, STAGE_PROTOCOL_VERSION, type StageResult, type StageTask, type StageWorkerData } from '../actors/stage-protocol.js';
import type { FunctionStage } from '../engine/method-graph.js';
import { addModel } from '../servables/example-models.js';
import { findProjectRoot } from '../servables/generate-models.js';
import { table } from './harness.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '5' } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);

// A servable of its own under perf/out/ (inside the package, so `import 'actorserve'` resolves).
const root = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));
const dir = path.join(root, 'perf', 'out', `stage-model-call-${process.pid}`);
mkdirSync(path.join(dir, 'bench', '1'), { recursive: true });
writeFileSync(path.join(dir, 'bench', '1', 'add.onnx'), addModel({ batch: 'N' }));
const configPath = path.join(dir, 'bench', 'servable_config.ts');
writeFileSync(
  configPath,
  `import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx', modelFormat: 'onnx' });

/** spec = [calls, inFlight]: that many model.call round trips, inFlight at a time; each one's ms, and the whole run's. */
export async function callLoop(spec: Tensor): Promise<Tensor[]> {
  const [calls, inFlight] = spec.data as Int32Array;
  const x: Tensor = { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) };
  const ms = new Float64Array(calls!);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight! }, async () => {
    while (next < calls!) {
      const i = next++;
      const s = performance.now();
      await model.call([x, x]);
      ms[i] = performance.now() - s;
    }
  }));
  return [{ dtype: 'float64', shape: [calls!], data: ms }, { dtype: 'float64', shape: [], data: Float64Array.of(performance.now() - t0) }];
}

export function identity(x: Tensor): Tensor {
  return x;
}

register.method('add', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));
`,
);

const engine = new ServingServer();
engine.log = () => {};
await engine.startServables(new ServableStartConfig({ servableDirectory: dir, servableName: 'bench' }));

const echo: ModelCaller = (call) => Promise.resolve(call.instances.map((inst) => [inst[0]!]));
const viaModel: ModelCaller = async (call) => {
  const out = await engine.infer('bench', 'add', call.instances.map(([x1, x2]) => ({ x1: x1!, x2: x2! })));
  return out.map((o) => [o.y!]);
};

const callLoop: FunctionStage = { kind: 'function', functionName: 'callLoop', tag: "Function 'callLoop'", args: [], outputsCount: 2, batchSize: undefined };
const channels: ModelCallChannel[] = ['posted', 'comlink'];
const pools = new Map(channels.map((c) => [c, new StagePool(1, Infinity, { modelCalls: c })]));
await Promise.all([...pools.values()].map((p) => p.warmup(configPath)));

interface Sample {
  readonly callsPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

async function sample(pool: StagePool, callModel: ModelCaller, inFlight: number): Promise<Sample> {
  const spec: Tensor = { dtype: 'int32', shape: [2], data: Int32Array.of(calls, inFlight) };
  const [out] = await pool.run(configPath, callLoop, [[spec]], { callModel });
  if (!Array.isArray(out)) throw out ?? new Error('the stage returned no result');
  const ms = Float64Array.from(out[0]!.data as Float64Array).sort();
  const totalMs = (out[1]!.data as Float64Array)[0]!;
  return { callsPerSec: calls / (totalMs / 1000), p50Us: ms[Math.floor(ms.length / 2)]! * 1000, p99Us: ms[Math.floor(ms.length * 0.99)]! * 1000 };
}

const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const cells = [
  { answer: 'echo', callModel: echo, inFlight: 1 },
  { answer: 'echo', callModel: echo, inFlight: 16 },
  { answer: 'add model', callModel: viaModel, inFlight: 1 },
  { answer: 'add model', callModel: viaModel, inFlight: 16 },
];
const samples = new Map<string, Sample[]>();
for (let r = -1; r < rounds; r++) {
  for (const cell of cells) {
    for (const channel of channels) {
      const s = await sample(pools.get(channel)!, cell.callModel, cell.inFlight);
      if (r < 0) continue; // warm-up round
      const key = `${cell.answer}|${cell.inFlight}|${channel}`;
      samples.set(key, [...(samples.get(key) ?? []), s]);
    }
  }
}
const modelCallRows = cells.flatMap((cell) =>
  channels.map((channel) => {
    const ss = samples.get(`${cell.answer}|${cell.inFlight}|${channel}`)!;
    return [cell.answer, cell.inFlight, channel, median(ss.map((s) => s.callsPerSec)), median(ss.map((s) => s.p50Us)), median(ss.map((s) => s.p99Us))];
  }),
);
await Promise.all([...pools.values()].map((p) => p.destroy()));
await engine.stop();

// Stage task round trips by piscina atomics mode: the real stage worker, a stage that returns its input.
const modes = ['sync', 'disabled'] as const;
const taskPools = new Map(
  modes.map((atomics) => [
    atomics,
    new Piscina<StageTask, StageResult>({
      filename: new URL('../actors/stage-worker.js', import.meta.url).href,
      workerData: { protocolVersion: STAGE_PROTOCOL_VERSION, ended: new SharedArrayBuffer(4), modelCalls: 'posted' } satisfies StageWorkerData,
      minThreads: 1,
      maxThreads: 1,
      concurrentTasksPerWorker: 16,
      atomics,
    }),
  ]),
);
const identityTask = {
  kind: 'run',
  configPath,
  functionName: 'identity',
  tag: "Function 'identity'",
  outputsCount: 1,
  batched: false,
  instances: [[{ dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }]],
} satisfies RunStageTask;

async function taskSample(pool: Piscina<StageTask, StageResult>, inFlight: number): Promise<Sample> {
  const ms: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < calls) {
        const s = performance.now();
        await pool.run(identityTask);
        ms.push(performance.now() - s);
      }
    }),
  );
  const totalMs = performance.now() - t0;
  ms.sort((a, b) => a - b);
  return { callsPerSec: ms.length / (totalMs / 1000), p50Us: ms[Math.floor(ms.length / 2)]! * 1000, p99Us: ms[Math.floor(ms.length * 0.99)]! * 1000 };
}

const taskSamples = new Map<string, Sample[]>();
for (let r = -1; r < rounds; r++) {
  for (const inFlight of [1, 16]) {
    for (const mode of modes) {
      // a pause between tasks, as between requests: an idle 'sync' thread sits in Atomics.wait
      await new Promise((resolve) => setTimeout(resolve, 5));
      const s = await taskSample(taskPools.get(mode)!, inFlight);
      if (r < 0) continue;
      const key = `${inFlight}|${mode}`;
      taskSamples.set(key, [...(taskSamples.get(key) ?? []), s]);
    }
  }
}
await Promise.all([...taskPools.values()].map((p) => p.destroy()));
rmSync(dir, { recursive: true, force: true });
const taskRows = [1, 16].flatMap((inFlight) =>
  modes.map((mode) => {
    const ss = taskSamples.get(`${inFlight}|${mode}`)!;
    return [mode, inFlight, median(ss.map((s) => s.callsPerSec)), median(ss.map((s) => s.p50Us)), median(ss.map((s) => s.p99Us))];
  }),
);

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
process.stdout.write(`\nStage pool boundary — ${os.cpus().length} cores, ${cpu}, Node ${process.version}; ${calls} calls per sample, median of ${rounds} rounds\n\n`);
process.stdout.write(`model.call from a stage function (one stage thread)\n\n`);
process.stdout.write(table(['main thread answers', 'in flight', 'channel', 'calls/s', 'p50 µs', 'p99 µs'], modelCallRows) + '\n\n');
process.stdout.write(`stage task round trip (stage function returns its input), by piscina atomics mode\n\n`);
process.stdout.write(table(['atomics', 'in flight', 'tasks/s', 'p50 µs', 'p99 µs'], taskRows) + '\n');
