/**
 * The load generator behind `actorserve bench` (and perf/suite): closed loops on worker
 * threads against a REST or gRPC target, one concurrency level at a time.
 *
 *   const plan = await makePlan({ target: '127.0.0.1:1500', protocol: 'rest', payload });
 *   await preflight(plan);                                    // one request; throws BenchError
 *   const r = await runLevel(plan, { concurrency: 64, durationMs: 5000, warmupMs: 500 });
 */
import http from 'node:http';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { Histogram } from './bench-histogram.js';
import type { Payload, Protocol } from './bench-input.js';
import {
  type RestEndpoint,
  SHARED_SLOTS,
  SLOT_ERRORS,
  SLOT_OK,
  type WorkerJob,
  type WorkerReport,
  restFailure,
  socketFailure,
} from './bench-worker.js';

/** The target cannot be used (unreachable, refuses the request): exit 1 with this one line. */
export class BenchError extends Error {}

/** A target that cannot even be parsed: a usage error. */
export class TargetError extends Error {}

export const DEFAULT_REST_PORT = 1500;
export const DEFAULT_GRPC_PORT = 5500;

export interface Plan {
  readonly protocol: Protocol;
  /** What the report calls the target (`http://127.0.0.1:1500`, `grpc://...`, `unix:/...`). */
  readonly label: string;
  readonly rest?: RestEndpoint;
  readonly grpcTarget?: string;
  readonly payload: Payload;
  readonly timeoutMs: number;
  /** Load-generator threads at most (each level uses min(this, concurrency)). */
  readonly workers: number;
}

/** Half the cores (at least 1, at most 8): the rest are left to the server when it is local. */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(8, Math.floor(os.availableParallelism() / 2)));
}

/**
 * `host:port`, `host` (default port), `http://host:port[/...]`, `grpc://host:port`,
 * `[::1]:port` or `unix:/path/to/socket`.
 */
export function parseTarget(target: string, protocol: Protocol): { label: string; rest?: RestEndpoint; grpcTarget?: string } {
  if (target.startsWith('unix:')) {
    const socketPath = target.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
    if (!socketPath) throw new TargetError(`the target '${target}' names no socket path`);
    return protocol === 'rest'
      ? { label: `unix:${socketPath}`, rest: { host: 'localhost', port: 0, socketPath } }
      : { label: `unix:${socketPath}`, grpcTarget: `unix:${socketPath}` };
  }
  let rest = target;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(target);
  if (scheme) {
    const s = scheme[1]!.toLowerCase();
    if (s === 'https' || s === 'grpcs') throw new TargetError(`TLS targets (${s}://) are not supported by bench; use a plaintext listener`);
    if (s !== 'http' && s !== 'grpc') throw new TargetError(`the target '${target}' has an unknown scheme '${s}://' (use host:port, http://host:port or unix:/path)`);
    rest = target.slice(scheme[0].length);
  }
  rest = rest.replace(/\/.*$/, '');
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/]+)(?::(\d+))?$/.exec(rest);
  if (!m) throw new TargetError(`cannot read the target '${target}' (use host:port, http://host:port or unix:/path)`);
  const host = m[1]!;
  const port = m[2] !== undefined ? Number(m[2]) : protocol === 'rest' ? DEFAULT_REST_PORT : DEFAULT_GRPC_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TargetError(`the target '${target}' has a bad port`);
  if (protocol === 'rest') {
    return { label: `http://${host}:${port}`, rest: { host: host.replace(/^\[|\]$/g, ''), port } };
  }
  return { label: `grpc://${host}:${port}`, grpcTarget: `${host}:${port}` };
}

export interface LevelOptions {
  readonly concurrency: number;
  /** Measure for this long ... */
  readonly durationMs?: number;
  /** ... or send exactly this many requests. */
  readonly requests?: number;
  /** Unmeasured load first (default 0). */
  readonly warmupMs?: number;
  /** Called about 4 times a second with the measured totals so far. */
  readonly onProgress?: (p: { ok: number; errors: number; elapsedMs: number }) => void;
}

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
    protocol: plan.protocol,
    ...(plan.rest ? { rest: plan.rest } : {}),
    ...(plan.grpcTarget ? { grpcTarget: plan.grpcTarget } : {}),
    path: plan.payload.path,
    headers: plan.payload.headers,
    payload: plan.payload.bytes,
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
  try {
    await Promise.race([Promise.all(ready), failed]);
    const measureFrom = performance.now() + (options.warmupMs ?? 0);
    if (options.onProgress) {
      const tick = options.onProgress;
      progress = setInterval(() => tick({ ok: Atomics.load(counters, SLOT_OK), errors: Atomics.load(counters, SLOT_ERRORS), elapsedMs: Math.max(0, performance.now() - measureFrom) }), 250);
    }
    for (const w of threads) w.postMessage('go');
    const results = await Promise.race([Promise.all(reports), failed]);
    return merge(plan, concurrency, workers, results);
  } finally {
    clearInterval(progress);
    await Promise.all(threads.map((w) => w.terminate()));
  }
}

function merge(plan: Plan, concurrency: number, workers: number, reports: readonly WorkerReport[]): LevelResult {
  const hist = new Histogram();
  const errorsByKind: Record<string, number> = {};
  const errorSamples: Record<string, string> = {};
  let errors = 0;
  for (const r of reports) {
    hist.merge(r.histogram);
    for (const [k, n] of Object.entries(r.errors)) {
      errorsByKind[k] = (errorsByKind[k] ?? 0) + n;
      errors += n;
      errorSamples[k] ??= r.samples[k] ?? '';
    }
  }
  const startedAt = Math.min(...reports.map((r) => r.startedAt));
  const endedAt = Math.max(...reports.map((r) => r.endedAt));
  const seconds = Math.max(1e-6, (endedAt - startedAt) / 1000);
  const ok = hist.count;
  const rps = ok / seconds;
  return {
    concurrency,
    workers,
    requests: ok + errors,
    ok,
    errors,
    errorsByKind,
    errorSamples,
    seconds,
    requestsPerSecond: rps,
    instancesPerSecond: rps * plan.payload.instances,
    latencyMs: {
      min: hist.quantileMs(0),
      mean: hist.meanMs(),
      p50: hist.quantileMs(0.5),
      p90: hist.quantileMs(0.9),
      p99: hist.quantileMs(0.99),
      max: hist.quantileMs(1),
    },
  };
}

/**
 * One request from this thread before any load: a target that is unreachable, or that refuses
 * the request as a whole (unknown servable, bad input), throws a BenchError with one line.
 */
export async function preflight(plan: Plan, timeoutMs = Math.min(plan.timeoutMs, 10_000)): Promise<void> {
  if (plan.protocol === 'rest') return restPreflight(plan, timeoutMs);
  const grpc = await import('@grpc/grpc-js');
  const { protos, PREDICT_PATH, PREDICT_STREAM_PATH, ERROR_CODES_TRAILER } = await import('../transports/grpc/proto.js');
  const { grpcFailure, replyFailure, streamReplyFailure } = await import('./bench-grpc.js');
  const { withStreamId } = await import('./bench-input.js');
  const p = protos();
  const client = new grpc.Client(plan.grpcTarget!, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
  const payload = Buffer.from(plan.payload.bytes.buffer, plan.payload.bytes.byteOffset, plan.payload.bytes.byteLength);
  const identity = (b: Buffer): Buffer => b;
  const where = `${plan.label} (gRPC ${plan.protocol === 'grpc' ? 'MSService/Predict' : 'PredictStream'})`;
  try {
    const failure = await new Promise<ReturnType<typeof grpcFailure> | undefined>((resolve) => {
      const deadline = Date.now() + timeoutMs;
      if (plan.protocol === 'grpc') {
        let reply: Parameters<typeof replyFailure>[0] | undefined;
        const call = client.makeUnaryRequest(PREDICT_PATH, identity, p.predict.responseDeserialize, payload, new grpc.Metadata(), { deadline }, (err, v) => {
          if (!err) reply = v;
        });
        call.on('status', (s) => resolve(reply && s.code === 0 ? replyFailure(reply, String(s.metadata.get(ERROR_CODES_TRAILER)[0] ?? '')) : grpcFailure(s.code, s.details)));
      } else {
        const call = client.makeBidiStreamRequest(PREDICT_STREAM_PATH, identity, p.predictStream.responseDeserialize, new grpc.Metadata(), { deadline });
        let answered = false;
        call.on('data', (r: Parameters<typeof streamReplyFailure>[0]) => {
          answered = true;
          resolve(streamReplyFailure(r));
          call.end();
        });
        call.on('error', () => undefined);
        call.on('status', (s) => {
          if (!answered) resolve(grpcFailure(s.code === 0 ? grpc.status.UNAVAILABLE : s.code, s.code === 0 ? 'the stream ended without a reply' : s.details));
        });
        call.write(withStreamId(payload, 1));
      }
    });
    if (failure) throw new BenchError(`${where}: ${failure.kind}${failure.message ? `: ${oneLine(failure.message)}` : ''}`);
  } finally {
    client.close();
  }
}

function restPreflight(plan: Plan, timeoutMs: number): Promise<void> {
  const rest = plan.rest!;
  const body = plan.payload.bytes;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        method: 'POST',
        path: plan.payload.path,
        headers: { ...plan.payload.headers, 'content-length': String(body.byteLength) },
        agent: false,
        ...(rest.socketPath ? { socketPath: rest.socketPath } : { host: rest.host, port: rest.port }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const f = restFailure(res.statusCode ?? 0, Buffer.concat(chunks));
          if (f) reject(new BenchError(`${plan.label}${plan.payload.path}: ${f.kind}${f.message ? `: ${oneLine(f.message)}` : ''}`));
          else resolve();
        });
        res.on('error', (err) => reject(new BenchError(`${plan.label}: ${err.message}`)));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no reply within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const f = socketFailure(err);
      reject(new BenchError(`cannot reach ${plan.label}: ${f.kind === err.code || f.kind === 'socket error' ? err.message : `${f.kind} (${err.message})`}`));
    });
    req.end(body);
  });
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}
