/**
 * Shared pieces of the in-process benchmarks: a bounded closed-loop load driver (`concurrency`
 * loops each await `call()` back to back until `durationMs` passes or `maxRequests` are done,
 * after a warm-up; requests/s and latency percentiles), round-robin timing of synchronous
 * contenders (`measureGroup`), and a text table.
 */
import { readFileSync } from 'node:fs';
import { setImmediate as tick } from 'node:timers/promises';

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU time of the calling (main) thread per request in the measured phase, in µs; NaN off Linux. */
  readonly threadCpuMicros: number;
}

/** CPU time the calling thread has used, in ns (Linux: /proc/thread-self/schedstat); NaN elsewhere. */
export function threadCpuNs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

export interface LoadOptions {
  readonly concurrency: number;
  readonly durationMs: number;
  readonly warmupMs?: number;
  readonly maxRequests?: number;
  /** Called once the warm-up ended, right before the measured phase (to read other counters). */
  readonly onMeasureStart?: () => void;
}

export async function closedLoop(call: () => Promise<unknown>, options: LoadOptions): Promise<LoadResult> {
  const warmEnd = performance.now() + (options.warmupMs ?? 300);
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (performance.now() < warmEnd) await call().catch(() => undefined);
    }),
  );
  const latencies: number[] = [];
  let errors = 0;
  const maxRequests = options.maxRequests ?? 5_000_000;
  options.onMeasureStart?.();
  const cpu0 = threadCpuNs();
  const start = performance.now();
  const end = start + options.durationMs;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (performance.now() < end && latencies.length + errors < maxRequests) {
        const t0 = performance.now();
        try {
          await call();
          latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const threadCpuMicros = (threadCpuNs() - cpu0) / 1000 / Math.max(1, latencies.length + errors);
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return { requests: latencies.length, errors, seconds, rps: latencies.length / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99), threadCpuMicros };
}

/** Formats rows as a Markdown table. */
export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => String(r[i]).length)));
  const line = (r: readonly (string | number)[]): string => `| ${r.map((c, i) => String(c).padEnd(widths[i]!)).join(' | ')} |`;
  return [line(headers), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...cells.map(line)].join('\n');
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n) || Number.isInteger(n)) return String(n);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 1) return n.toFixed(2);
  return n.toFixed(3);
}

export interface TimedResult {
  name: string;
  p50: number; // ms per call
  p99: number;
  opsPerSec: number; // from the median call: robust to other load on the machine
  mbPerSec?: number;
}

export interface Contender {
  name: string;
  fn: () => unknown;
}

/**
 * Times the contenders round-robin (one sample of each per round), so load from other
 * processes hits all of them alike; warm-up first, then at least `minMs` and 30 rounds. A
 * sample is one call, or a batch of calls for sub-0.2 ms calls (timer resolution); p50/p99 are
 * per call either way. Rounds are separated by an event-loop turn, as requests are in a
 * server (finalizers and idle-time work run there).
 */
export async function measureGroup(contenders: readonly Contender[], { minMs, bytes }: { minMs: number; bytes?: number }): Promise<TimedResult[]> {
  const times: number[][] = contenders.map(() => []);
  const batch = contenders.map(() => 1);
  let sink = 0;
  const run = (record: boolean) => {
    contenders.forEach((c, k) => {
      const n = batch[k]!;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const r = c.fn();
        sink += typeof r === 'string' ? r.length : 1;
      }
      const dt = (performance.now() - t0) / n;
      if (record) times[k]!.push(dt);
      else batch[k] = Math.max(1, Math.min(10000, Math.round(0.2 / Math.max(dt, 1e-6))));
    });
  };
  const warmEnd = performance.now() + minMs / 4;
  while (performance.now() < warmEnd) {
    run(false);
    await tick();
  }
  const end = performance.now() + minMs;
  while (performance.now() < end || times[0]!.length < 30) {
    run(true);
    await tick();
  }
  if (sink < 0) console.log(sink); // keep results alive
  return contenders.map((c, k) => {
    const ts = times[k]!.sort((a, b) => a - b);
    const p50 = ts[Math.floor(ts.length * 0.5)]!;
    const res: TimedResult = { name: c.name, p50, p99: ts[Math.min(ts.length - 1, Math.floor(ts.length * 0.99))]!, opsPerSec: 1000 / p50 };
    if (bytes !== undefined) res.mbPerSec = (bytes / 1e6) * res.opsPerSec;
    return res;
  });
}
