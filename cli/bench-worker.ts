/**
 * One load-generator thread of `actorserve bench`. It owns `loops` closed loops (each sends a
 * request, waits for its reply, sends the next) and their connections:
 *  - rest: one keep-alive HTTP/1.1 connection per loop (cli/bench-http.ts; or node:http's
 *    keep-alive Agent with `httpClient: 'node'`);
 *  - grpc: unary calls on HTTP/2 sessions (one per 100 loops; cli/bench-grpc.ts);
 *  - grpc-stream: one PredictStream per session carrying its loops' requests.
 * Payloads arrive pre-encoded; replies are only checked for errors.
 *
 * With the parent: workerData = WorkerJob → the worker posts 'ready' once its clients exist →
 * the parent posts 'go' → warm-up, measurement → the worker posts its WorkerReport.
 */
import { once } from 'node:events';
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { Histogram, type HistogramData } from './bench-histogram.js';
import type { Protocol } from './bench-input.js';
import { type Failure, type RestEndpoint, restFailure, socketFailure } from './bench-failure.js';

/** Slots of the shared Int32Array. */
export const SLOT_TICKETS = 0; // requests mode: tickets taken
export const SLOT_OK = 1; // measured successes (progress line)
export const SLOT_ERRORS = 2; // measured failures (progress line)
export const SHARED_SLOTS = 3;

export type HttpClientKind = 'raw' | 'node';

export interface WorkerJob {
  readonly protocol: Protocol;
  readonly rest?: RestEndpoint;
  readonly grpc?: { readonly authority: string; readonly socketPath?: string };
  readonly httpClient: HttpClientKind;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly payload: Uint8Array;
  readonly loops: number;
  readonly timeoutMs: number;
  readonly warmupMs: number;
  /** Measure for this long (duration mode) ... */
  readonly durationMs?: number;
  /** ... or until this many tickets are taken by all workers together (requests mode). */
  readonly requests?: number;
  readonly shared: SharedArrayBuffer;
}

export interface WorkerReport {
  readonly histogram: HistogramData;
  readonly errors: Record<string, number>;
  /** One message per error kind (the first seen). */
  readonly samples: Record<string, string>;
  /** Absolute times (performance.timeOrigin + now) bounding the measured part. */
  readonly startedAt: number;
  readonly endedAt: number;
  /** Absolute time from which every request failed to connect, when that lasted UNREACHABLE_AFTER_MS. */
  readonly unreachableAt?: number;
}

/**
 * Connection failures on every request for this long (no success in between, on any loop of
 * the thread): the server is gone, and the thread stops its level rather than reconnecting in
 * a loop and averaging requests/s over the dead time.
 */
export const UNREACHABLE_AFTER_MS = 1_000;

type Send = () => Promise<Failure | undefined>;

export interface LoadClient {
  /** The send function of loop `i`. */
  sender(i: number): Send;
  close(): void;
}

const ERROR_MSG = Buffer.from('error_msg');

/** node:http with a keep-alive Agent (`--http-client node`), kept as a cross-check. */
function nodeHttpClient(job: WorkerJob): LoadClient {
  const rest = job.rest!;
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.loops, maxFreeSockets: job.loops, scheduling: 'lifo' });
  const body = Buffer.from(job.payload.buffer, job.payload.byteOffset, job.payload.byteLength);
  const options: http.RequestOptions = {
    agent,
    method: 'POST',
    path: job.path,
    headers: { ...job.headers, 'content-length': String(body.byteLength) },
    ...(rest.socketPath ? { socketPath: rest.socketPath } : { host: rest.host, port: rest.port }),
  };
  const send: Send = () =>
    new Promise((resolve) => {
      let done = false;
      const finish = (f: Failure | undefined): void => {
        if (!done) {
          done = true;
          resolve(f);
        }
      };
      const req = http.request(options, (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          if (status === 200 || kept < 300) {
            chunks.push(chunk);
            kept += chunk.length;
          }
        });
        res.on('end', () => {
          const b = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          finish(status === 200 && !b.includes(ERROR_MSG) ? undefined : restFailure(status, b));
        });
        res.on('error', (err) => finish(socketFailure(err)));
      });
      req.setTimeout(job.timeoutMs, () => req.destroy(Object.assign(new Error(`no reply within ${job.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => finish(socketFailure(err)));
      req.end(body);
    });
  return { sender: () => send, close: () => agent.destroy() };
}

/** The client for a job (also used by the preflight request on the main thread). */
export async function makeClient(job: Omit<WorkerJob, 'shared' | 'warmupMs'>): Promise<LoadClient> {
  if (job.protocol === 'rest') {
    if (job.httpClient === 'node') return nodeHttpClient(job as WorkerJob);
    const { HttpConnection, encodeRequest } = await import('./bench-http.js');
    const request = encodeRequest(job.rest!, job.path, job.headers, job.payload);
    const conns = Array.from({ length: job.loops }, () => new HttpConnection(job.rest!, request, job.timeoutMs));
    return { sender: (i) => () => conns[i]!.send(), close: () => conns.forEach((c) => c.close()) };
  }
  const { GrpcSession, frame } = await import('./bench-grpc.js');
  const sessions = Array.from({ length: Math.ceil(job.loops / 100) }, () => new GrpcSession(job.grpc!, job.timeoutMs));
  if (job.protocol === 'grpc' || job.protocol === 'kserve') {
    const framed = frame(job.payload);
    const rpc = job.protocol === 'kserve' ? 'kserve' : 'predict';
    return { sender: (i) => () => sessions[i % sessions.length]!.unary(framed, rpc), close: () => sessions.forEach((s) => s.close()) };
  }
  const streams = sessions.map((s) => s.stream());
  return {
    sender: (i) => () => streams[i % streams.length]!.send(job.payload),
    close: () => {
      streams.forEach((s) => s.close());
      sessions.forEach((s) => s.close());
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(job: WorkerJob, client: LoadClient): Promise<WorkerReport> {
  const shared = new Int32Array(job.shared);
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  const samples: Record<string, string> = {};
  const t0 = performance.now();
  const warmEnd = t0 + job.warmupMs;
  const end = job.durationMs !== undefined ? warmEnd + job.durationMs : Infinity;
  const limit = job.requests ?? Infinity;
  let firstStart = Infinity;
  let lastEnd = 0;
  /** Start of the current run of connection failures (none while requests get replies). */
  let downSince: number | undefined;
  let unreachableAt: number | undefined;

  const loop = async (i: number): Promise<void> => {
    const send = client.sender(i);
    for (;;) {
      if (unreachableAt !== undefined) return;
      const start = performance.now();
      const warming = start < warmEnd;
      if (!warming) {
        if (start >= end) return;
        if (limit !== Infinity && Atomics.add(shared, SLOT_TICKETS, 1) >= limit) return;
        if (start < firstStart) firstStart = start;
      }
      const failure = await send();
      const stop = performance.now();
      if (!warming && stop <= end) {
        if (stop > lastEnd) lastEnd = stop;
        if (failure === undefined) {
          hist.record(stop - start);
          Atomics.add(shared, SLOT_OK, 1);
        } else {
          errors[failure.kind] = (errors[failure.kind] ?? 0) + 1;
          samples[failure.kind] ??= failure.message;
          Atomics.add(shared, SLOT_ERRORS, 1);
        }
      }
      if (failure?.connection) {
        downSince ??= start;
        if (stop - downSince >= UNREACHABLE_AFTER_MS) unreachableAt ??= downSince;
        await sleep(10);
      } else {
        downSince = undefined;
      }
    }
  };
  await Promise.all(Array.from({ length: job.loops }, (_, i) => loop(i)));
  const origin = performance.timeOrigin;
  // Duration mode measures the fixed window; requests mode from the first ticket to the last reply.
  const from = job.durationMs !== undefined ? warmEnd : firstStart === Infinity ? warmEnd : firstStart;
  let to = job.durationMs !== undefined ? end : Math.max(lastEnd, from);
  // With the server gone, the measurement ends where it went.
  if (unreachableAt !== undefined) to = Math.max(from, Math.min(to, unreachableAt));
  return { histogram: hist.data(), errors, samples, startedAt: origin + from, endedAt: origin + to, ...(unreachableAt !== undefined ? { unreachableAt: origin + unreachableAt } : {}) };
}

if (parentPort && workerData && (workerData as { protocol?: unknown }).protocol) {
  const job = workerData as WorkerJob;
  const port = parentPort;
  const client = await makeClient(job);
  const go = once(port, 'message'); // listening before 'ready' goes out
  port.postMessage('ready');
  await go;
  const report = await run(job, client);
  client.close();
  port.postMessage(report, [report.histogram.counts.buffer as ArrayBuffer]);
}
