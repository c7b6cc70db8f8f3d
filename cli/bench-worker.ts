/**
 * One load-generator thread of `actorserve bench`. It owns `loops` closed loops (each sends a
 * request, waits for its reply, sends the next) and their connections: keep-alive HTTP/1.1
 * sockets for REST, one HTTP/2 channel for gRPC (one bidirectional stream for grpc-stream).
 * Payloads arrive pre-encoded; replies are only checked, never decoded into tensors (REST) or
 * decoded by protobuf alone (gRPC).
 *
 * Protocol with the parent: workerData = WorkerJob → the worker posts 'ready' once its client
 * exists → the parent posts 'go' → the worker runs warm-up + measurement and posts its
 * WorkerReport.
 */
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { Histogram, type HistogramData } from './bench-histogram.js';
import type { Protocol } from './bench-input.js';

/** Slots of the shared Int32Array. */
export const SLOT_TICKETS = 0; // requests mode: tickets taken
export const SLOT_OK = 1; // measured successes (progress line)
export const SLOT_ERRORS = 2; // measured failures (progress line)
export const SHARED_SLOTS = 3;

export interface RestEndpoint {
  readonly host: string;
  readonly port: number;
  readonly socketPath?: string;
}

export interface WorkerJob {
  readonly protocol: Protocol;
  /** REST: where to connect; gRPC: the grpc-js target string. */
  readonly rest?: RestEndpoint;
  readonly grpcTarget?: string;
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
}

/** A failed request: `kind` groups it in the report, `message` is a sample. */
export interface Failure {
  readonly kind: string;
  readonly message: string;
  /** The connection failed (no reply): loops back off briefly instead of spinning. */
  readonly connection?: boolean;
}

type Send = () => Promise<Failure | undefined>;

interface Client {
  readonly send: Send;
  close(): void;
}

const ERROR_MSG = Buffer.from('error_msg');

/** An error thrown by node:http / net as a Failure. */
export function socketFailure(err: NodeJS.ErrnoException): Failure {
  const code = err.code ?? '';
  const kind =
    code === 'ECONNREFUSED' ? 'connection refused'
    : code === 'ECONNRESET' || code === 'EPIPE' ? 'connection reset'
    : code === 'ENOENT' ? 'no such socket'
    : code === 'ETIMEDOUT' || err.message === 'timeout' ? 'timeout'
    : code === 'HPE_INVALID_CONSTANT' || code.startsWith('HPE_') ? 'bad HTTP reply'
    : code !== '' ? code
    : 'socket error';
  return { kind, message: err.message, connection: kind !== 'timeout' && kind !== 'bad HTTP reply' };
}

/** What a REST reply says: undefined when it is a success. `body` is the reply (or its first bytes). */
export function restFailure(status: number, body: Buffer): Failure | undefined {
  if (status === 200) {
    return body.includes(ERROR_MSG) ? { kind: 'instance error', message: preview(body) } : undefined;
  }
  return { kind: `HTTP ${status}`, message: preview(body) };
}

function preview(body: Buffer): string {
  const text = body.subarray(0, 300).toString('utf8');
  try {
    const parsed = JSON.parse(text) as { error_msg?: unknown; instances?: { error_msg?: unknown }[] };
    if (typeof parsed.error_msg === 'string') return parsed.error_msg;
    const inst = parsed.instances?.find((i) => typeof i?.error_msg === 'string');
    if (inst) return String(inst.error_msg);
  } catch {
    // not JSON (or cut): show the text
  }
  return text.replace(/\s+/g, ' ').trim();
}

function restClient(job: WorkerJob): Client {
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
        // Keep the whole body only to look for error_msg (200) or to quote it (errors); a
        // small carry-over finds the key across chunk borders.
        let carry: Buffer | undefined;
        let failed = false;
        let head: Buffer | undefined;
        res.on('data', (chunk: Buffer) => {
          if (status !== 200) {
            if (!head || head.length < 300) head = head ? Buffer.concat([head, chunk]) : chunk;
            return;
          }
          if (failed) return;
          const window = carry ? Buffer.concat([carry, chunk]) : chunk;
          if (window.includes(ERROR_MSG)) {
            failed = true;
            head = window;
          } else carry = window.subarray(Math.max(0, window.length - ERROR_MSG.length + 1));
        });
        res.on('end', () => finish(status === 200 && !failed ? undefined : restFailure(status, head ?? Buffer.alloc(0))));
        res.on('error', (err) => finish(socketFailure(err)));
      });
      req.setTimeout(job.timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => finish(socketFailure(err)));
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}

async function grpcClient(job: WorkerJob): Promise<Client> {
  const grpc = await import('@grpc/grpc-js');
  const { protos, PREDICT_PATH, PREDICT_STREAM_PATH, ERROR_CODES_TRAILER } = await import('../transports/grpc/proto.js');
  const { grpcFailure, replyFailure, streamReplyFailure } = await import('./bench-grpc.js');
  const p = protos();
  const client = new grpc.Client(job.grpcTarget!, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': -1,
    'grpc.max_receive_message_length': -1,
    'grpc.use_local_subchannel_pool': 1,
  });
  const payload = Buffer.from(job.payload.buffer, job.payload.byteOffset, job.payload.byteLength);
  const identity = (b: Buffer): Buffer => b;

  if (job.protocol === 'grpc') {
    const send: Send = () =>
      new Promise((resolve) => {
        let reply: Parameters<typeof replyFailure>[0] | undefined;
        let error: Failure | undefined;
        const call = client.makeUnaryRequest(
          PREDICT_PATH,
          identity,
          p.predict.responseDeserialize,
          payload,
          new grpc.Metadata(),
          { deadline: Date.now() + job.timeoutMs },
          (err, value) => {
            if (err) error = grpcFailure(err.code, err.details);
            else reply = value;
          },
        );
        call.on('status', (s) => {
          if (error || !reply) resolve(error ?? grpcFailure(s.code, s.details));
          else resolve(replyFailure(reply, String(s.metadata.get(ERROR_CODES_TRAILER)[0] ?? '')));
        });
      });
    return { send, close: () => client.close() };
  }

  // grpc-stream: one PredictStream per worker, every loop's request in flight on it.
  const { withStreamId } = await import('./bench-input.js');
  type Waiter = { resolve: (f: Failure | undefined) => void; timer: NodeJS.Timeout };
  let stream: ReturnType<typeof open> | undefined;
  let nextId = 1;
  function open() {
    const pending = new Map<number, Waiter>();
    const call = client.makeBidiStreamRequest(PREDICT_STREAM_PATH, identity, p.predictStream.responseDeserialize, new grpc.Metadata(), {});
    const s = { call, pending, broken: false };
    call.on('data', (r: Parameters<typeof streamReplyFailure>[0]) => {
      const w = pending.get(Number(r.id ?? 0));
      if (!w) return;
      pending.delete(Number(r.id));
      clearTimeout(w.timer);
      w.resolve(streamReplyFailure(r));
    });
    call.on('error', () => undefined); // reported through 'status'
    call.on('status', (st) => {
      s.broken = true;
      const f = grpcFailure(st.code === 0 ? grpc.status.UNAVAILABLE : st.code, st.code === 0 ? 'the stream ended' : st.details);
      for (const w of pending.values()) {
        clearTimeout(w.timer);
        w.resolve(f);
      }
      pending.clear();
      if (stream === s) stream = undefined;
    });
    return s;
  }
  const send: Send = () =>
    new Promise((resolve) => {
      if (!stream || stream.broken) stream = open();
      const s = stream;
      const id = nextId++;
      const timer = setTimeout(() => {
        if (s.pending.delete(id)) resolve({ kind: 'timeout', message: `no reply within ${job.timeoutMs} ms` });
      }, job.timeoutMs);
      s.pending.set(id, { resolve, timer });
      s.call.write(withStreamId(payload, id));
    });
  return {
    send,
    close: () => {
      stream?.call.end();
      client.close();
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(job: WorkerJob, client: Client): Promise<WorkerReport> {
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

  const loop = async (): Promise<void> => {
    for (;;) {
      const start = performance.now();
      const warming = start < warmEnd;
      if (!warming) {
        if (start >= end) return;
        if (limit !== Infinity && Atomics.add(shared, SLOT_TICKETS, 1) >= limit) return;
        if (start < firstStart) firstStart = start;
      }
      const failure = await client.send();
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
      if (failure?.connection) await sleep(10);
    }
  };
  await Promise.all(Array.from({ length: job.loops }, loop));
  const origin = performance.timeOrigin;
  // Duration mode measures the fixed window; requests mode from the first ticket to the last reply.
  const startedAt = origin + (job.durationMs !== undefined ? warmEnd : firstStart === Infinity ? warmEnd : firstStart);
  const endedAt = origin + (job.durationMs !== undefined ? end : Math.max(lastEnd, firstStart === Infinity ? warmEnd : firstStart));
  return { histogram: hist.data(), errors, samples, startedAt, endedAt };
}

if (parentPort && workerData && (workerData as { protocol?: unknown }).protocol) {
  const job = workerData as WorkerJob;
  const port = parentPort;
  const client = job.protocol === 'rest' ? restClient(job) : await grpcClient(job);
  port.once('message', async () => {
    const report = await run(job, client);
    client.close();
    port.postMessage(report, [report.histogram.counts.buffer as ArrayBuffer]);
  });
  port.postMessage('ready');
}
