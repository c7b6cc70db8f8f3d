/**
 * Stateful sequences through the engine API (docs/sequences.md), on the bundled `rnn` example:
 * S sequences of T steps each, every sequence a chain of requests (a step waits for the one
 * before), run two ways in the same process, alternating each round:
 *
 *   - "one at a time": the sequences one after another (nothing to batch with);
 *   - "concurrent": all S sequences at once, so steps of different sequences share batches.
 *
 * Reported: steps/s of each (median of the rounds), the mean batch size of the concurrent run,
 * and the load average (the machine is shared).
 *
 *   npm run build && node dist/perf/sequences.js [--sequences 32] [--steps 20] [--rounds 3] [--devices 1]
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ServableStartConfig, ServingServer } from '../index.js';
import { RNN_IN } from '../servables/example-models.js';
import { ensureExampleModels, findProjectRoot } from '../servables/generate-models.js';
import { table } from './harness.js';

const BUNDLED_SERVABLES_DIR = path.join(findProjectRoot(path.dirname(fileURLToPath(import.meta.url))), 'servables');

const { values } = parseArgs({
  options: {
    sequences: { type: 'string', default: '32' },
    steps: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    devices: { type: 'string', default: '1' },
  },
});
const S = Number(values.sequences);
const T = Number(values.steps);
const rounds = Number(values.rounds);
const deviceIds = Array.from({ length: Number(values.devices) }, (_, i) => i);

await ensureExampleModels(BUNDLED_SERVABLES_DIR);
const engine = new ServingServer();
engine.log = () => {};
await engine.startServables(new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES_DIR, servableName: 'rnn', deviceIds }));
const x = { dtype: 'float32' as const, shape: [RNN_IN], data: Float32Array.of(0.1, -0.2, 0.3, -0.4) };
let nextId = 1;

async function sequence(): Promise<void> {
  const id = nextId++;
  for (let k = 0; k < T; k++) await engine.infer('rnn', 'step', [{ x }], { sequence: { id, start: k === 0, end: k === T - 1 } });
}

async function oneAtATime(): Promise<number> {
  const t0 = performance.now();
  for (let s = 0; s < S; s++) await sequence();
  return (S * T) / ((performance.now() - t0) / 1000);
}

async function concurrent(): Promise<{ rate: number; meanBatch: number }> {
  const before = engine.runtime('rnn').stats;
  const [b0, i0] = [before.batches, before.instances];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: S }, () => sequence()));
  const rate = (S * T) / ((performance.now() - t0) / 1000);
  const after = engine.runtime('rnn').stats;
  return { rate, meanBatch: (after.instances - i0) / (after.batches - b0) };
}

await concurrent(); // warm-up
const alone: number[] = [];
const together: number[] = [];
const batches: number[] = [];
for (let r = 0; r < rounds; r++) {
  alone.push(await oneAtATime());
  const c = await concurrent();
  together.push(c.rate);
  batches.push(c.meanBatch);
}
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
console.log(`rnn: ${S} sequences x ${T} steps, ${deviceIds.length} device actor(s), ${rounds} rounds; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(
  table(
    ['run', 'steps/s (median)', 'mean batch'],
    [
      ['one sequence at a time', median(alone).toFixed(0), '1'],
      [`${S} sequences concurrent`, median(together).toFixed(0), median(batches).toFixed(1)],
    ],
  ),
);
console.log(`concurrent / one at a time: ${(median(together) / median(alone)).toFixed(2)}x`);
await engine.stop();
