/**
 * A bounded closed-loop load driver for in-process benchmarks: `concurrency` loops each
 * await `call()` back to back until `durationMs` passes (or `maxRequests` are done), after a
 * warm-up. Reports requests/s and latency percentiles.
 */

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface LoadOptions {
  readonly concurrency: number;
  readonly durationMs: number;
  readonly warmupMs?: number;
  readonly maxRequests?: number;
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
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return { requests: latencies.length, errors, seconds, rps: latencies.length / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99) };
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
