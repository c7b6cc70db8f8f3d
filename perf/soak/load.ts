/**
 * The soak's load: closed loops (each sends its next request when the previous one ended),
 * REST loops on a keep-alive connection each, gRPC loops on an HTTP/2 session each. A loop
 * walks a shuffled schedule of the request kinds (each kind as often as its weight), so the
 * mix is the same in every stretch of the run. Every outcome is tallied per kind; the latency
 * of each good request that succeeded goes into the histogram of its kind for the current
 * time window. Bounded: loops stop at the deadline or after `maxRequests` requests in all.
 */
import type { RestEndpoint } from '../../cli/bench-failure.js';
import { type GrpcEndpoint, GrpcSession } from '../../cli/bench-grpc.js';
import { HttpConnection } from '../../cli/bench-http.js';
import { Histogram } from '../../cli/bench-histogram.js';
import { type Kind, type LoopClients, type Protocol, REQUEST_TIMEOUT_MS } from './traffic.js';

export interface LoadOptions {
  readonly rest: RestEndpoint;
  readonly grpc: GrpcEndpoint;
  readonly kinds: readonly Kind[];
  readonly restLoops: number;
  readonly grpcLoops: number;
  readonly durationMs: number;
  readonly windowMs: number;
  readonly maxRequests: number;
}

/** One time window: requests that ended in it, and the latency of good ones per kind. */
export interface Window {
  readonly startS: number;
  requests: number;
  readonly latency: Map<string, Histogram>;
}

export interface LoadResult {
  /** kind id → outcome → count. */
  readonly outcomes: Map<string, Map<string, number>>;
  readonly windows: Window[];
  readonly requests: number;
  readonly elapsedMs: number;
}

/** A deterministic shuffle (mulberry32), so runs send the same sequence. */
function shuffled<T>(items: T[], seed: number): T[] {
  let a = seed >>> 0;
  const rand = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function schedule(kinds: readonly Kind[], protocol: Protocol, seed: number): Kind[] {
  return shuffled(
    kinds.filter((k) => k.protocol === protocol).flatMap((k) => Array.from({ length: k.weight }, () => k)),
    seed,
  );
}

/** Runs the load until `durationMs` has passed (or `maxRequests` were sent) and every loop's last request ended. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const outcomes = new Map<string, Map<string, number>>(o.kinds.map((k) => [k.id, new Map()]));
  const windows: Window[] = [];
  const t0 = performance.now();
  const end = t0 + o.durationMs;
  let requests = 0;
  const windowAt = (now: number): Window => {
    const i = Math.floor((now - t0) / o.windowMs);
    while (windows.length <= i) windows.push({ startS: (windows.length * o.windowMs) / 1000, requests: 0, latency: new Map() });
    return windows[i]!;
  };

  const loop = async (protocol: Protocol, index: number): Promise<void> => {
    const plan = schedule(o.kinds, protocol, 1 + index * 7919 + (protocol === 'grpc' ? 104_729 : 0));
    const clients: LoopClients = protocol === 'rest' ? { rest: new HttpConnection(o.rest, Buffer.alloc(0), REQUEST_TIMEOUT_MS) } : { grpc: new GrpcSession(o.grpc, REQUEST_TIMEOUT_MS) };
    try {
      for (let i = index; performance.now() < end && requests < o.maxRequests; i++) {
        requests++;
        const kind = plan[i % plan.length]!;
        const start = performance.now();
        const result = await kind.send(clients);
        const now = performance.now();
        const counts = outcomes.get(kind.id)!;
        counts.set(result, (counts.get(result) ?? 0) + 1);
        const w = windowAt(Math.min(now, end - 1));
        w.requests++;
        if (kind.class === 'good' && result === 'ok') {
          let h = w.latency.get(kind.id);
          if (!h) w.latency.set(kind.id, (h = new Histogram()));
          h.record(now - start);
        }
        // a refused connection answers at once: do not spin on a dead server
        if (result === 'connection refused' || result === 'connection reset') await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      clients.rest?.close();
      clients.grpc?.close();
    }
  };

  await Promise.all([
    ...Array.from({ length: o.restLoops }, (_, i) => loop('rest', i)),
    ...Array.from({ length: o.grpcLoops }, (_, i) => loop('grpc', i)),
  ]);
  return { outcomes, windows, requests, elapsedMs: performance.now() - t0 };
}
