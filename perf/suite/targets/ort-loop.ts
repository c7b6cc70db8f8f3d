/**
 * perf suite baseline: the raw onnxruntime-node compute loop — `session.run` back to back on
 * one thread, no server, no encoding — for each model at batch 1 and at the servable's batch
 * limit, with the session options actorserve's device actors use. The compute ceiling.
 *
 *   node dist/perf/suite/targets/ort-loop.js --add FILE --mlp FILE --resnet FILE \
 *     [--intra-op-threads 1] [--duration-ms 2000] [--repeats 3]
 *
 * Prints `RESULT {"rows": [...]}` and exits.
 */
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { MODEL_ARGS, baselineSessionOptions } from './session-options.js';

const { values } = parseArgs({
  options: {
    ...MODEL_ARGS,
    'duration-ms': { type: 'string', default: '2000' },
    repeats: { type: 'string', default: '3' },
    batches: { type: 'string', default: '{"add":[1,16],"mlp":[1,64],"resnet":[1,8]}' },
  },
});
const durationMs = Number(values['duration-ms']);
const repeats = Number(values.repeats);
const batches = JSON.parse(values.batches) as Record<'add' | 'mlp' | 'resnet', number[]>;
const options = baselineSessionOptions(Number(values['intra-op-threads']));

function filled(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.37);
  return a;
}

const feedsOf: Record<'add' | 'mlp' | 'resnet', (b: number) => Record<string, ort.Tensor>> = {
  add: (b) => ({ x1: new ort.Tensor('float32', filled(b * 4), [b, 2, 2]), x2: new ort.Tensor('float32', filled(b * 4), [b, 2, 2]) }),
  mlp: (b) => ({ x: new ort.Tensor('float32', filled(b * 1024), [b, 1024]) }),
  resnet: (b) => ({ x: new ort.Tensor('float32', filled(b * 3 * 224 * 224), [b, 3, 224, 224]) }),
};

interface Cell {
  callsPerSecond: number;
  instancesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const rows: { model: string; batch: number; cells: Cell[] }[] = [];
for (const model of ['add', 'mlp', 'resnet'] as const) {
  const session = await ort.InferenceSession.create(values[model]!, options);
  for (const batch of batches[model]) {
    const feeds = feedsOf[model](batch);
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const cells: Cell[] = [];
    for (let r = 0; r < repeats; r++) {
      const lat: number[] = [];
      const start = performance.now();
      const end = start + durationMs;
      let now = start;
      while (now < end) {
        const t0 = performance.now();
        await session.run(feeds);
        now = performance.now();
        lat.push(now - t0);
      }
      const seconds = (now - start) / 1000;
      lat.sort((a, b) => a - b);
      const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
      cells.push({ callsPerSecond: lat.length / seconds, instancesPerSecond: (lat.length * batch) / seconds, p50Ms: q(0.5), p99Ms: q(0.99) });
    }
    rows.push({ model, batch, cells });
  }
  await session.release();
}
process.stdout.write(`RESULT ${JSON.stringify({ rows })}\n`);
