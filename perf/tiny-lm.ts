/**
 * Token generation with the bundled `tiny_lm` servable through the engine API (`inferStream` of
 * its streaming `generate` method: a stream stage running prefill then decode steps as
 * `model.call`s of one sequence each, so decode steps of concurrent generations share batches)
 * against the plain loop on onnxruntime-node directly (perf/tiny-lm-ort.ts: prefill then decode,
 * one sequence at a time), in the same process, alternating each round:
 *
 *   - "plain loop": the C prompts one after another on onnxruntime-node;
 *   - "engine, C streams": the C generations at once through the engine.
 *
 * Both greedy, `--tokens` tokens each, on prompts whose greedy continuation does not stop early
 * (so every generation makes the same number of tokens), one device actor and one ONNX Runtime
 * thread on each side. Reported per C: tokens/s (median of the rounds), time to first token and
 * per-token latency (gap between a stream's consecutive pieces) p50/p99 over all rounds, the
 * mean batch (prefill and decode steps together), and the load average (the machine is shared).
 * A third row per C is the model's ceiling: the C prompts as one batch straight on
 * onnxruntime-node, decoded in lockstep. The plain loop's TTFT is from each generation's own
 * start; the engine's from when all C streams were sent.
 *
 *   npm run build && node dist/perf/tiny-lm.js [--streams 1,8,32] [--tokens 32] [--rounds 3]
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ServableStartConfig, ServingServer, stringTensor } from '../index.js';
import { ensureExampleModels, findProjectRoot } from '../servables/generate-models.js';
import { encodePrompt, generateText, generationParams, sampleToken } from '../servables/tiny-lm-text.js';
import { table } from './harness.js';
import { TinyLmOrt, plainLoop } from './tiny-lm-ort.js';

const BUNDLED_SERVABLES_DIR = path.join(findProjectRoot(path.dirname(fileURLToPath(import.meta.url))), 'servables');

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '1,8,32' },
    tokens: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
  },
});
const streamCounts = values.streams.split(',').map(Number);
const TOKENS = Number(values.tokens);
const rounds = Number(values.rounds);
const params = generationParams({ max_tokens: TOKENS });

const lm = await TinyLmOrt.create({ intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });

/** Prompts whose greedy continuation runs the full `TOKENS` (no early EOS): equal work per generation. */
async function fullLengthPrompts(count: number): Promise<string[]> {
  const found: string[] = [];
  for (let i = 0; found.length < count && i < 50 * count; i++) {
    const prompt = `prompt ${i}: the`;
    let bytes = 0;
    for await (const piece of generateText(prompt, params, lm.backend())) bytes += Buffer.byteLength(piece);
    if (bytes === TOKENS) found.push(prompt);
  }
  if (found.length < count) throw new Error(`only ${found.length} of ${count} prompts generate ${TOKENS} tokens greedily`);
  return found;
}

await ensureExampleModels(BUNDLED_SERVABLES_DIR);
const engine = new ServingServer();
engine.log = () => {};
await engine.startServables(new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES_DIR, servableName: 'tiny_lm', deviceIds: [0], intraOpThreads: 1 }));
const prompts = await fullLengthPrompts(Math.max(...streamCounts));

interface RunStats {
  readonly tokensPerS: number;
  readonly ttftMs: number[];
  readonly gapMs: number[];
}

/** Piece arrival times (ms from the generation's start) → the stats of one run. */
function runStats(wallMs: number, piecesMs: readonly (readonly number[])[]): RunStats {
  const tokens = piecesMs.reduce((n, p) => n + p.length, 0);
  return {
    tokensPerS: tokens / (wallMs / 1000),
    ttftMs: piecesMs.map((p) => p[0] ?? NaN),
    gapMs: piecesMs.flatMap((p) => p.slice(1).map((at, i) => at - p[i]!)),
  };
}

async function plainRun(c: number): Promise<RunStats> {
  const t0 = performance.now();
  const results = await plainLoop(lm, prompts.slice(0, c), params);
  return runStats(performance.now() - t0, results.map((r) => r.pieceTimesMs));
}

/**
 * The model's own ceiling: the C prompts as one batch on onnxruntime-node, prefill then decode
 * steps in lockstep (greedy; no engine, no threads between steps).
 */
async function lockstepRun(c: number): Promise<RunStats> {
  const t0 = performance.now();
  const piecesMs: number[][] = Array.from({ length: c }, () => []);
  let step = await lm.prefill(prompts.slice(0, c).map(encodePrompt));
  for (let k = 0; k < TOKENS; k++) {
    const next = step.logits.map((l) => sampleToken(l, params, () => 0));
    const now = performance.now() - t0;
    piecesMs.forEach((p) => p.push(now));
    if (k + 1 < TOKENS) step = await lm.decode(next, step.state);
  }
  return runStats(performance.now() - t0, piecesMs);
}

async function engineStream(prompt: string): Promise<number[]> {
  const t0 = performance.now();
  const at: number[] = [];
  for await (const event of engine.inferStream('tiny_lm', 'generate', [{ text_input: stringTensor(prompt) }], { parameters: { max_tokens: TOKENS } })) {
    if ('error' in event) throw event.error;
    at.push(performance.now() - t0);
  }
  return at;
}

async function engineRun(c: number): Promise<RunStats & { meanBatch: number }> {
  const before = engine.runtime('tiny_lm').stats;
  const t0 = performance.now();
  const piecesMs = await Promise.all(prompts.slice(0, c).map(engineStream));
  const wall = performance.now() - t0;
  const after = engine.runtime('tiny_lm').stats;
  return { ...runStats(wall, piecesMs), meanBatch: (after.instances - before.instances) / (after.batches - before.batches) };
}

const median = (a: readonly number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
const pct = (a: readonly number[], q: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const ms = (v: number) => v.toFixed(2);

await engineRun(Math.max(...streamCounts)); // warm-up (both sides)
await plainRun(1);
const loads: number[] = [];
const rows: (string | number)[][] = [];
const ratios: string[] = [];
for (const c of streamCounts) {
  const plain: RunStats[] = [];
  const viaEngine: (RunStats & { meanBatch: number })[] = [];
  const lockstep: RunStats[] = [];
  for (let r = 0; r < rounds; r++) {
    plain.push(await plainRun(c));
    viaEngine.push(await engineRun(c));
    lockstep.push(await lockstepRun(c));
    loads.push(os.loadavg()[0]!);
  }
  const row = (name: string, runs: readonly RunStats[], batch: string) => {
    const ttft = runs.flatMap((x) => x.ttftMs);
    const gaps = runs.flatMap((x) => x.gapMs);
    return [name, c, median(runs.map((x) => x.tokensPerS)).toFixed(0), ms(pct(ttft, 0.5)), ms(pct(ttft, 0.99)), ms(pct(gaps, 0.5)), ms(pct(gaps, 0.99)), batch];
  };
  rows.push(row('plain onnxruntime-node loop (one at a time)', plain, '1'));
  rows.push(row('engine inferStream (concurrent)', viaEngine, median(viaEngine.map((x) => x.meanBatch)).toFixed(1)));
  rows.push(row('ceiling: one onnxruntime-node batch in lockstep', lockstep, String(c)));
  const ratio = median(viaEngine.map((x) => x.tokensPerS)) / median(plain.map((x) => x.tokensPerS));
  ratios.push(`C=${c}: ${ratio.toFixed(2)}x`);
}
console.log(
  `tiny_lm: ${TOKENS} tokens per generation (greedy), ${rounds} rounds per row, 1 device actor / 1 ORT thread each side, ${os.cpus().length} CPUs; ` +
    `load average (1 min) during the runs ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`,
);
console.log(table(['run', 'streams', 'tokens/s (median)', 'TTFT p50 ms', 'TTFT p99 ms', 'per-token p50 ms', 'per-token p99 ms', 'mean batch'], rows));
console.log(`engine tokens/s / plain loop tokens/s: ${ratios.join(', ')}`);
await engine.stop();
await lm.release();
