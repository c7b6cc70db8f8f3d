/**
 * What a streamed partial result costs (StageOptions.stream, docs/servables.md), on the engine
 * API, against two baselines in the same run:
 *
 * - stream: `inferStream` of a generator yielding N strings, read as they come (each crosses
 *   the stage-thread boundary as a message; credit goes back every 4);
 * - unary join: `infer` of the same method, the partials joined into one reply (the same
 *   messages from the thread, no events handed to a reader);
 * - unary per piece: the way without streaming, one `infer` of a plain function stage per
 *   piece, one after another;
 * - and the shape of a generation: a generator making one `model.call` (the add model on a
 *   device actor) per piece, streamed and joined.
 *
 * Contenders alternate within each round; the table gives the median over the rounds.
 * 2026-12-08, 2 shared cores, load average 8-11, Node 20 (µs per piece, median of 5 rounds):
 *
 *   concurrent | stream | unary join | unary per piece
 *   1 x 2000   | 41     | 34         | 195
 *   8 x 500    | 30     | 31         | 125
 *
 * A streamed piece costs about what it costs inside a unary reply (one message from the
 * stage thread each), and a fifth to a quarter of a request per piece. With a model.call per
 * piece (1 x 1000, 9 rounds, load average 16): streamed 460, joined 407 µs per piece (rounds
 * spread 270-2950 either way): the model.call round trip is the cost of a step, the stream
 * adds little to it.
 *
 *   npm run build && node dist/perf/stream-stage.js [--pieces 2000] [--rounds 5] [--streams 1]
 */
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ServableStartConfig, ServingServer, type Tensor } from '../index.js';
import { addModel } from '../servables/example-models.js';
import { findProjectRoot } from '../servables/generate-models.js';
import { table } from './harness.js';

const { values } = parseArgs({ options: { pieces: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '5' }, streams: { type: 'string', default: '1' } } });
const pieces = Number(values.pieces);
const rounds = Number(values.rounds);
const streams = Number(values.streams);

const root = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));
const dir = path.join(root, 'perf', 'out', `stream-stage-${process.pid}`);
mkdirSync(path.join(dir, 'bench', '1'), { recursive: true });
writeFileSync(path.join(dir, 'bench', '1', 'add.onnx'), addModel({ batch: 'N' }));
writeFileSync(
  path.join(dir, 'bench', 'servable_config.ts'),
  `import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
const x: Tensor = { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) };
export async function* pieces(n: Tensor) {
  const count = (n.data as Float32Array)[0]!;
  for (let i = 0; i < count; i++) yield 'piece';
}
/** A generation's shape: one model.call (the add model on its device actor) per piece. */
export async function* steps(n: Tensor) {
  const count = (n.data as Float32Array)[0]!;
  for (let i = 0; i < count; i++) yield (await model.call([x, x]))[0]!;
}
export function piece(_n: Tensor) {
  return 'piece';
}
register.method('stream', { outputs: ['text'] }, (n) => register.addStage(pieces, [n], { stream: true }));
register.method('one', { outputs: ['text'] }, (n) => register.addStage(piece, [n]));
register.method('steps', { outputs: ['y'] }, (n) => register.addStage(steps, [n], { stream: true }));
`,
);

const engine = new ServingServer();
engine.log = () => {};
try {
  await engine.startServables(new ServableStartConfig({ servableDirectory: dir, servableName: 'bench', numParallelWorkers: 1 }));
  const n = (count: number): { n: Tensor } => ({ n: { dtype: 'float32', shape: [1], data: Float32Array.of(count) } });

  const streamed = (method: string) => async () => {
    await Promise.all(
      Array.from({ length: streams }, async () => {
        let got = 0;
        for await (const e of engine.inferStream('bench', method, [n(pieces)])) {
          if ('error' in e) throw e.error;
          got++;
        }
        if (got !== pieces) throw new Error(`got ${got} events`);
      }),
    );
  };
  const contenders: [string, () => Promise<void>][] = [
    ['stream (inferStream, read as they come)', streamed('stream')],
    [
      'unary join (infer of the same method)',
      async () => {
        await Promise.all(Array.from({ length: streams }, () => engine.infer('bench', 'stream', [n(pieces)])));
      },
    ],
    [
      'unary per piece (one infer each)',
      async () => {
        await Promise.all(
          Array.from({ length: streams }, async () => {
            for (let i = 0; i < pieces; i++) await engine.infer('bench', 'one', [n(1)]);
          }),
        );
      },
    ],
    ['stream, a model.call per piece', streamed('steps')],
    [
      'unary join, a model.call per piece',
      async () => {
        await Promise.all(Array.from({ length: streams }, () => engine.infer('bench', 'steps', [n(pieces)])));
      },
    ],
  ];
  for (const [, run] of contenders) await run(); // warm-up
  const us = contenders.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, [, run]] of contenders.entries()) {
      const t0 = performance.now();
      await run();
      us[i]!.push(((performance.now() - t0) * 1000) / (pieces * streams));
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`${pieces} pieces x ${streams} concurrent, ${rounds} rounds; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${os.cpus().length} cores, Node ${process.version}`);
  console.log(table(['contender', 'µs per piece (median)', 'pieces/s', 'rounds (µs per piece)'], contenders.map(([name], i) => [name, median(us[i]!).toFixed(1), Math.round(1e6 / median(us[i]!)), us[i]!.map((u) => u.toFixed(1)).join(' ')])));
} finally {
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
}
