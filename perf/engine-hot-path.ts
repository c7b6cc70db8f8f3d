/**
 * The engine's hot path without a transport: `server.infer('add', 'add_common', ...)` with one
 * [2, 2] instance per request, at concurrency 1 and 64, beside onnxruntime-node called
 * directly on the main thread (the floor of per-call overhead, though it serves connections
 * unfairly because session.run blocks the event loop). Each row gives the main thread's CPU
 * time per request (Linux), the cost a transport in the same thread competes with.
 *
 *   npm run build && node dist/perf/engine-hot-path.js [--duration-ms 3000]
 */
import os from 'node:os';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { ServingServer } from '../server.js';
import { ServableStartConfig } from '../engine/start-config.js';
import { ensureExampleModels, findProjectRoot } from '../servables/generate-models.js';
import { type LoadResult, closedLoop, table } from './harness.js';

const { values } = parseArgs({ options: { 'duration-ms': { type: 'string', default: '3000' } } });
const durationMs = Number(values['duration-ms']);
const servables = path.join(findProjectRoot(path.dirname(fileURLToPath(import.meta.url))), 'servables');
await ensureExampleModels(servables);

const x = () => ({ dtype: 'float32' as const, shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) });
const rows: (string | number)[][] = [];
const record = (name: string, c: number, r: LoadResult, base?: LoadResult): void => {
  rows.push([name, c, r.rps, r.p50Ms * 1000, r.p99Ms * 1000, r.threadCpuMicros, r.errors, base ? `${(r.rps / base.rps).toFixed(2)}×` : '1.00×']);
};

// Baseline: onnxruntime-node directly, same model, same single-instance requests.
const session = await ort.InferenceSession.create(await readFile(path.join(servables, 'add/1/tensor_add.onnx')), {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
});
const direct = () => session.run({ x1: new ort.Tensor('float32', x().data, [1, 2, 2]), x2: new ort.Tensor('float32', x().data, [1, 2, 2]) });
const baselines = new Map<number, LoadResult>();
for (const c of [1, 64]) {
  const r = await closedLoop(direct, { concurrency: c, durationMs });
  baselines.set(c, r);
  record('onnxruntime-node direct (main thread)', c, r);
}
await session.release();

const cells: { deviceIds: number[]; metrics: boolean }[] = [
  { deviceIds: [0], metrics: true },
  { deviceIds: [0], metrics: false },
  { deviceIds: [0, 1], metrics: true },
];
for (const { deviceIds, metrics } of cells) {
  const engine = new ServingServer({ metrics });
  engine.log = () => {};
  await engine.startServables(new ServableStartConfig({ servableDirectory: servables, servableName: 'add', deviceIds }));
  for (const c of [1, 64]) {
    const r = await closedLoop(() => engine.infer('add', 'add_common', [{ x1: x(), x2: x() }]), { concurrency: c, durationMs });
    const stats = engine.runtime('add').stats;
    const name = `engine.infer add_common, ${deviceIds.length} device actor${deviceIds.length > 1 ? 's' : ''}${metrics ? '' : ', metrics off'}`;
    record(name, c, r, baselines.get(c));
    rows[rows.length - 1]!.push((stats.instances / stats.batches).toFixed(1));
  }
  await engine.stop();
}

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
process.stdout.write(`\nEngine hot path — ${os.cpus().length} cores, ${cpu}, Node ${process.version}, ${durationMs} ms per cell\n\n`);
process.stdout.write(
  table(
    ['path', 'concurrency', 'requests/s', 'p50 µs', 'p99 µs', 'main thread µs/request', 'errors', 'vs direct', 'mean batch'],
    rows.map((r) => (r.length < 9 ? [...r, '-'] : r)),
  ) + '\n',
);
