/**
 * The load generator behind `actorserve bench` (and perf/suite): closed loops on worker
 * threads against a REST or gRPC target, one concurrency level at a time.
 *
 *   const plan = await makePlan({ target: '127.0.0.1:1500', protocol: 'rest', payload });
 *   await preflight(plan);                                    // one request; throws BenchError
 *   const r = await runLevel(plan, { concurrency: 64, durationMs: 5000, warmupMs: 500 });
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { TargetError, parseTargetAddress } from '../transports/target-address.js';
import { Histogram } from './bench-histogram.js';
import type { Payload, Protocol } from './bench-input.js';
import type { RestEndpoint } from './bench-failure.js';
import type { GrpcEndpoint } from './bench-grpc.js';
import type { Failure } from './bench-failure.js';
import { processCpuSeconds } from './proc-cpu.js';
import { type HttpClientKind, SHARED_SLOTS, SLOT_ERRORS, SLOT_OK, type WorkerJob, type WorkerReport, makeClient } from './bench-worker.js';

/** The target cannot be used (unreachable, refuses the request): exit 1 with this one line. */
export class BenchError extends Error {}

/** A target that cannot even be parsed: a usage error. */
export { TargetError };

export const DEFAULT_REST_PORT = 1500;
export const DEFAULT_GRPC_PORT = 5500;

export interface Plan {
  readonly protocol: Protocol;
  /** What the report calls the target (`http://127.0.0.1:1500`, `grpc://...`, `unix:/...`). */
  readonly label: string;
  readonly rest?: RestEndpoint;
  readonly grpc?: GrpcEndpoint;
  /** REST: the raw keep-alive client (default) or node:http's. */
  readonly httpClient?: HttpClientKind;
  readonly payload: Payload;
  readonly timeoutMs: number;
  /** Load-generator threads at most (each level uses min(this, concurrency)). */
  readonly workers: number;
}

/** Half the cores (at least 1, at most 8): the rest are left to the server when it is local. */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(8, Math.floor(os.availableParallelism() / 2)));
}

/** The target as bench reads it (transports/target-address.ts, shared with `infer`), for `protocol`. */
export function parseTarget(target: string, protocol: Protocol): { label: string; rest?: RestEndpoint; grpc?: GrpcEndpoint } {
  const a = parseTargetAddress(target, protocol === 'rest' ? DEFAULT_REST_PORT : DEFAULT_GRPC_PORT, 'are not supported by bench; use a plaintext listener');
  if (a.kind === 'unix') {
    return protocol === 'rest'
      ? { label: `unix:${a.path}`, rest: { host: 'localhost', port: 0, socketPath: a.path } }
      : { label: `unix:${a.path}`, grpc: { authority: 'localhost', socketPath: a.path } };
  }
  if (protocol === 'rest') return { label: `http://${a.hostText}:${a.port}`, rest: { host: a.host, port: a.port } };
  return { label: `grpc://${a.hostText}:${a.port}`, grpc: { authority: `${a.hostText}:${a.port}` } };
}

export interface LevelOptions {
  readonly concurrency: number;
  /** Measure for this long ... */
  readonly durationMs?: number;
  /** ... or send exactly this many requests. */
  readonly requests?: number;
  /** Unmeasured load first (default 0). */
  readonly warmupMs?: number;
  /** Duration mode: called when the measured window opens and closes (main-thread timers, ±1 ms). */
  readonly onWindow?: (edge: 'start' | 'end') => void;
  /** Called about 4 times a second with the measured totals so far (wrk: time only). */
  readonly onProgress?: (p: { ok?: number; errors?: number; elapsedMs: number }) => void;
  /** The server's process id, when it runs on this machine: its CPU time is read over the measurement. */
  readonly serverPid?: number;
}

/** Which load generator ran a level: worker threads in this process, or wrk. */
export type Generator = 'js' | 'wrk';

export interface LevelResult {
  readonly concurrency: number;
  readonly workers: number;
  /** Requests answered in the measurement (successes + failures). */
  readonly requests: number;
  readonly ok: number;
  readonly errors: number;
  readonly errorsByKind: Record<string, number>;
  /** One message per error kind. */
  readonly errorSamples: Record<string, string>;
  readonly seconds: number;
  /** Successful requests per second. */
  readonly requestsPerSecond: number;
  /** Successful instances per second (requests/s × instances per request). */
  readonly instancesPerSecond: number;
  /** Latency of successful requests, milliseconds. */
  readonly latencyMs: { readonly min: number; readonly mean: number; readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  /**
   * Seconds into the measurement from which the server could not be reached (every request
   * failed to connect for UNREACHABLE_AFTER_MS); the level stopped there and its rates are
   * over the time before. Absent while the server answered.
   */
  readonly unreachableFromSeconds?: number;
  readonly generator: Generator;
  /** CPU seconds the load generator used over the measurement (all its threads); absent when unknown. */
  readonly generatorCpuSeconds?: number;
  /** The same per answered request, in µs. */
  readonly generatorCpuPerRequestUs?: number;
  /** CPU seconds the server process used over the measurement (with serverPid, on Linux). */
  readonly serverCpuSeconds?: number;
  /** The same per answered request, in µs. */
  readonly serverCpuPerRequestUs?: number;
}

/** The CPU fields of a LevelResult from CPU seconds over a measurement of `requests` requests. */
export function cpuFields(requests: number, generator: number | undefined, server: number | undefined): Pick<LevelResult, 'generatorCpuSeconds' | 'generatorCpuPerRequestUs' | 'serverCpuSeconds' | 'serverCpuPerRequestUs'> {
  const per = (s: number): number | undefined => (requests > 0 ? (s / requests) * 1e6 : undefined);
  const out: { generatorCpuSeconds?: number; generatorCpuPerRequestUs?: number; serverCpuSeconds?: number; serverCpuPerRequestUs?: number } = {};
  if (generator !== undefined) {
    out.generatorCpuSeconds = generator;
    const p = per(generator);
    if (p !== undefined) out.generatorCpuPerRequestUs = p;
  }
  if (server !== undefined) {
    out.serverCpuSeconds = server;
    const p = per(server);
    if (p !== undefined) out.serverCpuPerRequestUs = p;
  }
  return out;
}

/** CPU seconds of this process (all threads: the JS generator's load threads included). */
function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

const WORKER_URL = new URL('./bench-worker.js', import.meta.url);

/** Runs one concurrency level: spawns the workers, waits until all are ready, runs, merges. */
export async function runLevel(plan: Plan, options: LevelOptions): Promise<LevelResult> {
  const { concurrency } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be an integer >= 1, got ${concurrency}`);
  if ((options.durationMs === undefined) === (options.requests === undefined)) throw new RangeError('give durationMs or requests');
  const workers = Math.max(1, Math.min(plan.workers, concurrency));
  const shared = new SharedArrayBuffer(SHARED_SLOTS * 4);
  const counters = new Int32Array(shared);
  const jobs: WorkerJob[] = Array.from({ length: workers }, (_, i) => ({
    ...target(plan),
    loops: Math.floor(concurrency / workers) + (i < concurrency % workers ? 1 : 0),
    timeoutMs: plan.timeoutMs,
    warmupMs: options.warmupMs ?? 0,
    ...(options.durationMs !== undefined ? { durationMs: options.durationMs } : {}),
    ...(options.requests !== undefined ? { requests: options.requests } : {}),
    shared,
  }));
  const threads = jobs.map((job) => new Worker(WORKER_URL, { workerData: job }));
  const ready: Promise<unknown>[] = [];
  const reports: Promise<WorkerReport>[] = [];
  let fail: (err: Error) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  for (const w of threads) {
    let got = 0;
    let readyNow: (v: unknown) => void = () => undefined;
    let reportNow: (v: WorkerReport) => void = () => undefined;
    ready.push(new Promise((r) => (readyNow = r)));
    reports.push(new Promise((r) => (reportNow = r)));
    w.on('message', (m: unknown) => (got++ === 0 ? readyNow(m) : reportNow(m as WorkerReport)));
    w.once('error', fail);
    // Messages posted before a thread ends arrive before 'exit'; a thread that ends without its report failed.
    w.once('exit', (code) => setImmediate(() => got < 2 && fail(new Error(`a load-generator thread exited (code ${code}) before reporting`))));
  }
  let progress: NodeJS.Timeout | undefined;
  const windowTimers: NodeJS.Timeout[] = [];
  try {
    await Promise.race([Promise.all(ready), failed]);
    const measureFrom = performance.now() + (options.warmupMs ?? 0);
    if (options.onProgress) {
      const tick = options.onProgress;
      progress = setInterval(() => tick({ ok: Atomics.load(counters, SLOT_OK), errors: Atomics.load(counters, SLOT_ERRORS), elapsedMs: Math.max(0, performance.now() - measureFrom) }), 250);
    }
    // CPU of this process and of the server over the measured window: duration mode between
    // the window's edges, requests mode from 'go' to the last report
    const cpu: Record<'start' | 'end', { self: number; server: number | undefined }> = { start: { self: 0, server: undefined }, end: { self: 0, server: undefined } };
    const sample = (e: 'start' | 'end'): void => {
      cpu[e] = { self: selfCpuSeconds(), server: options.serverPid !== undefined ? processCpuSeconds(options.serverPid) : undefined };
    };
    const pending = new Set<'start' | 'end'>();
    const fire = (e: 'start' | 'end'): void => {
      if (!pending.delete(e)) return;
      sample(e);
      options.onWindow?.(e);
    };
    if (options.durationMs !== undefined) {
      pending.add('start').add('end');
      windowTimers.push(setTimeout(() => fire('start'), options.warmupMs ?? 0));
      windowTimers.push(setTimeout(() => fire('end'), (options.warmupMs ?? 0) + options.durationMs));
    } else {
      sample('start');
    }
    for (const w of threads) w.postMessage('go');
    const results = await Promise.race([Promise.all(reports), failed]);
    // the threads may report a moment before this thread's timer fires
    fire('start');
    fire('end');
    if (options.durationMs === undefined) sample('end');
    const level = merge(plan, concurrency, workers, results);
    const server = cpu.start.server !== undefined && cpu.end.server !== undefined ? cpu.end.server - cpu.start.server : undefined;
    return { ...level, ...cpuFields(level.requests, cpu.end.self - cpu.start.self, server) };
  } finally {
    clearInterval(progress);
    windowTimers.forEach(clearTimeout);
    await Promise.all(threads.map((w) => w.terminate()));
  }
}

function merge(plan: Plan, concurrency: number, workers: number, reports: readonly WorkerReport[]): LevelResult {
  const hist = new Histogram();
  const errorsByKind: Record<string, number> = {};
  const errorSamples: Record<string, string> = {};
  for (const r of reports) {
    hist.merge(r.histogram);
    for (const [k, n] of Object.entries(r.errors)) {
      errorsByKind[k] = (errorsByKind[k] ?? 0) + n;
      errorSamples[k] ??= r.samples[k] ?? '';
    }
  }
  const startedAt = Math.min(...reports.map((r) => r.startedAt));
  const endedAt = Math.max(...reports.map((r) => r.endedAt));
  const gone = reports.map((r) => r.unreachableAt).filter((at): at is number => at !== undefined);
  return levelResult(plan, {
    concurrency,
    workers,
    ok: hist.count,
    errorsByKind,
    errorSamples,
    seconds: (endedAt - startedAt) / 1000,
    latencyMs: {
      min: hist.quantileMs(0),
      mean: hist.meanMs(),
      p50: hist.quantileMs(0.5),
      p90: hist.quantileMs(0.9),
      p99: hist.quantileMs(0.99),
      max: hist.quantileMs(1),
    },
    ...(gone.length > 0 ? { unreachableFromSeconds: Math.max(0, (Math.min(...gone) - startedAt) / 1000) } : {}),
    generator: 'js',
  });
}

/** A LevelResult from a level's counts (either generator): the totals and rates follow from them. */
export function levelResult(
  plan: Plan,
  l: Pick<LevelResult, 'concurrency' | 'workers' | 'ok' | 'errorsByKind' | 'errorSamples' | 'seconds' | 'latencyMs' | 'unreachableFromSeconds' | 'generator'>,
): LevelResult {
  const errors = Object.values(l.errorsByKind).reduce((a, b) => a + b, 0);
  const seconds = Math.max(1e-6, l.seconds);
  const rps = l.ok / seconds;
  return { ...l, requests: l.ok + errors, errors, seconds, requestsPerSecond: rps, instancesPerSecond: rps * plan.payload.instances };
}

/** The rpc each gRPC protocol calls, for messages. */
const GRPC_RPC = { grpc: 'MSService/Predict', 'grpc-stream': 'PredictStream', kserve: 'GRPCInferenceService/ModelInfer' } as const;

/** What a load client needs to reach the plan's target and send its request. */
function target(plan: Plan) {
  return {
    protocol: plan.protocol,
    ...(plan.rest ? { rest: plan.rest } : {}),
    ...(plan.grpc ? { grpc: plan.grpc } : {}),
    httpClient: plan.httpClient ?? 'raw',
    path: plan.payload.path,
    headers: plan.payload.headers,
    payload: plan.payload.bytes,
  };
}

/**
 * One request from this thread before any load, with the same client: a target that is
 * unreachable, or that refuses the request as a whole (unknown servable, bad input), throws a
 * BenchError with one line.
 */
export async function preflight(plan: Plan, timeoutMs = Math.min(plan.timeoutMs, 10_000)): Promise<void> {
  const f = await sampleRequest(plan, timeoutMs);
  if (!f) return;
  const what = plan.protocol === 'rest' ? `${plan.label}${plan.payload.path}` : `${plan.label} (${GRPC_RPC[plan.protocol]})`;
  if (f.connection) throw new BenchError(`cannot reach ${what}: ${f.kind}${f.message && f.message !== f.kind ? ` (${oneLine(f.message)})` : ''}`);
  throw new BenchError(`${what}: ${f.kind}${f.message ? `: ${oneLine(f.message)}` : ''}`);
}

/** One request with the JS client from this thread: undefined on success, else the failure. */
export async function sampleRequest(plan: Plan, timeoutMs = Math.min(plan.timeoutMs, 10_000)): Promise<Failure | undefined> {
  const client = await makeClient({ ...target(plan), loops: 1, timeoutMs });
  try {
    return await client.sender(0)();
  } finally {
    client.close();
  }
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}
