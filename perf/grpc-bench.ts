/**
 * gRPC transport load: unary `MSService/Predict` and the pipelined `PredictStream` against
 * the bundled `add` servable (`add_common`, one float32 [2, 2] instance per request), at
 * concurrency 1, 8 and 64, beside a bare grpc-js echo server in the same run (same protos,
 * same message sizes, a handler that answers with x1 at once: the transport's ceiling).
 *
 * The load generator is bounded and closed-loop: `--workers` worker threads (each with its
 * own Client, i.e. its own HTTP/2 connection) run concurrency / workers loops that each wait
 * for a reply before sending the next request. Streaming cells use one stream per worker with
 * the same number of requests outstanding on it.
 *
 *   npm run build && node dist/perf/grpc-bench.js [--duration-ms 3000] [--workers 2]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ServingServer } from '../server.js';
import { ServableStartConfig } from '../engine/start-config.js';
import { ensureExampleModels, findProjectRoot } from '../servables/generate-models.js';
import { Client } from '../transports/grpc/client.js';
import { startGrpcEcho } from './grpc-echo-server.js';
import { startGrpcServer } from '../transports/grpc/server.js';
import { table } from './harness.js';

type Mode = 'unary' | 'stream';

interface Job {
  readonly address: string;
  readonly mode: Mode;
  readonly loops: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

interface JobResult {
  readonly latencies: Float64Array;
  readonly errors: number;
  readonly firstError: string | undefined;
}

const CONCURRENCY = [1, 8, 64];

if (isMainThread) {
  await main();
} else {
  parentPort!.postMessage(await generate(workerData as Job));
}

/** One worker's share of the load: `loops` closed loops for warm-up + duration. */
async function generate(job: Job): Promise<JobResult> {
  const client = new Client(job.address, 'add', 'add_common', { timeoutMs: 30_000 });
  const stream = job.mode === 'stream' ? client.stream() : undefined;
  const x = { dtype: 'float32' as const, shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) };
  const call = stream ? () => stream.infer({ x1: x, x2: x }) : () => client.infer({ x1: x, x2: x });
  let latencies = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  let firstError: string | undefined;
  const warmEnd = performance.now() + job.warmupMs;
  const end = warmEnd + job.durationMs;
  await Promise.all(
    Array.from({ length: job.loops }, async () => {
      for (;;) {
        const t0 = performance.now();
        if (t0 >= end) return;
        try {
          await call();
          const t1 = performance.now();
          if (t0 >= warmEnd && t1 <= end) {
            if (n === latencies.length) {
              const grown = new Float64Array(latencies.length * 2);
              grown.set(latencies);
              latencies = grown;
            }
            latencies[n++] = t1 - t0;
          }
        } catch (err) {
          errors++;
          firstError ??= (err as Error).message;
        }
      }
    }),
  );
  await stream?.end().catch(() => undefined);
  client.close();
  return { latencies: latencies.slice(0, n), errors, firstError };
}

interface Cell {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function runCell(address: string, mode: Mode, concurrency: number, workers: number, durationMs: number): Promise<Cell> {
  const w = Math.min(workers, concurrency);
  const share = Array.from({ length: w }, (_, i) => Math.floor(concurrency / w) + (i < concurrency % w ? 1 : 0));
  const results = await Promise.all(
    share.map(
      (loops) =>
        new Promise<JobResult>((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: { address, mode, loops, warmupMs: 500, durationMs } satisfies Job });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  const all = new Float64Array(results.reduce((s, r) => s + r.latencies.length, 0));
  let off = 0;
  for (const r of results) {
    all.set(r.latencies, off);
    off += r.latencies.length;
  }
  all.sort();
  const pct = (p: number) => all[Math.min(all.length - 1, Math.floor(all.length * p))] ?? NaN;
  const errors = results.reduce((s, r) => s + r.errors, 0);
  const first = results.find((r) => r.firstError)?.firstError;
  if (first) process.stderr.write(`${mode} c=${concurrency} ${address}: ${errors} errors, first: ${first}\n`);
  return { rps: all.length / (durationMs / 1000), p50: pct(0.5), p99: pct(0.99), errors };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { 'duration-ms': { type: 'string', default: '3000' }, workers: { type: 'string', default: '2' } },
  });
  const durationMs = Number(values['duration-ms']);
  const workers = Number(values.workers);
  const servables = path.join(findProjectRoot(path.dirname(fileURLToPath(import.meta.url))), 'servables');
  await ensureExampleModels(servables);

  const engine = new ServingServer();
  engine.log = () => {};
  await engine.startServables(new ServableStartConfig({ servableDirectory: servables, servableName: 'add' }));
  const grpc = await startGrpcServer(engine, '127.0.0.1:0');
  const echo = await startGrpcEcho();

  const rows: (string | number)[][] = [];
  for (const mode of ['unary', 'stream'] as const) {
    for (const c of CONCURRENCY) {
      const base = await runCell(echo.address, mode, c, workers, durationMs);
      const ours = await runCell(grpc.address, mode, c, workers, durationMs);
      const label = mode === 'unary' ? 'MSService/Predict' : 'PredictStream';
      rows.push([`${label}, bare grpc-js echo`, c, base.rps, base.p50, base.p99, base.errors, '1.00×']);
      rows.push([`${label}, actorserve add_common`, c, ours.rps, ours.p50, ours.p99, ours.errors, `${(ours.rps / base.rps).toFixed(2)}×`]);
    }
  }
  echo.close();
  await grpc.close();
  await engine.stop();
  process.stdout.write(
    `gRPC transport, ${workers} load worker thread${workers > 1 ? 's' : ''}, ${durationMs} ms per cell, one [2, 2] float32 instance per request\n\n`,
  );
  process.stdout.write(`${table(['target', 'concurrency', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'vs echo'], rows)}\n`);
}
