/**
 * The soak's verdict, pure functions of what it measured: memory slope after warm-up (least
 * squares over the samples), outcomes other than the intended ones, p99 latency of the first
 * and the last window after warm-up, and a server that stayed up and stopped cleanly.
 */

export interface Thresholds {
  /** Most resident-memory growth after warm-up, MB per minute (least-squares slope). */
  readonly maxSlopeMbPerMin: number;
  /** The last window's p99 may be at most this many times the first window's ... */
  readonly p99Ratio: number;
  /** ... or at most this many ms above it (whichever is more lenient: small p99s are noisy). */
  readonly p99SlackMs: number;
  /** A p99 from fewer good requests than this in a window is shown, not checked. */
  readonly p99MinSamples: number;
}

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  /** What was measured, in words and numbers. */
  readonly value: string;
  /** The limit it was held to. */
  readonly limit: string;
}

/** Least-squares slope of y over t (per unit of t); NaN below two points or with no spread of t. */
export function slope(points: readonly { readonly t: number; readonly y: number }[]): number {
  const p = points.filter((q) => Number.isFinite(q.t) && Number.isFinite(q.y));
  if (p.length < 2) return NaN;
  const mt = p.reduce((s, q) => s + q.t, 0) / p.length;
  const my = p.reduce((s, q) => s + q.y, 0) / p.length;
  let num = 0;
  let den = 0;
  for (const q of p) {
    num += (q.t - mt) * (q.y - my);
    den += (q.t - mt) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

const f = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');

/** Memory: the slope of `mb` (MB, sampled at `t` seconds) after warm-up, in MB/min. */
export function memoryCheck(name: string, samples: readonly { readonly t: number; readonly mb: number }[], warmupS: number, maxSlopeMbPerMin: number): Check & { readonly slopeMbPerMin: number } {
  const after = samples.filter((s) => s.t >= warmupS).map((s) => ({ t: s.t / 60, y: s.mb }));
  const s = slope(after);
  return {
    name,
    ok: after.length >= 3 && Number.isFinite(s) && s <= maxSlopeMbPerMin,
    value: after.length >= 3 ? `${f(s, 2)} MB/min over ${after.length} samples after ${f(warmupS, 0)} s` : `only ${after.length} samples after warm-up`,
    limit: `≤ ${maxSlopeMbPerMin} MB/min`,
    slopeMbPerMin: s,
  };
}

/** Outcome counts of one kind of request with the outcomes intended for it. */
export interface KindOutcomes {
  readonly id: string;
  readonly expected: readonly string[];
  readonly counts: ReadonlyMap<string, number>;
}

/** Every outcome not intended for its kind (none may happen), and every kind sent at least once. */
export function outcomeChecks(kinds: readonly KindOutcomes[]): Check[] {
  const unexpected: string[] = [];
  const unsent: string[] = [];
  for (const k of kinds) {
    let sent = 0;
    for (const [outcome, n] of k.counts) {
      sent += n;
      if (!k.expected.includes(outcome)) unexpected.push(`${k.id}: ${outcome} × ${n}`);
    }
    if (sent === 0) unsent.push(k.id);
  }
  return [
    { name: 'only intended outcomes', ok: unexpected.length === 0, value: unexpected.length ? unexpected.join('; ') : 'none unexpected', limit: 'every outcome intended for its kind' },
    { name: 'every kind sent', ok: unsent.length === 0, value: unsent.length ? `never sent: ${unsent.join(', ')}` : `${kinds.length} kinds`, limit: 'each at least once' },
  ];
}

/** p99 of one good kind in the first and the last window after warm-up. */
export interface P99Pair {
  readonly id: string;
  readonly first: { readonly p99Ms: number; readonly n: number };
  readonly last: { readonly p99Ms: number; readonly n: number };
}

export function p99Check(pair: P99Pair, t: Thresholds): Check {
  const { first, last } = pair;
  const name = `p99 stable: ${pair.id}`;
  const value = `first ${f(first.p99Ms, 2)} ms (n=${first.n}), last ${f(last.p99Ms, 2)} ms (n=${last.n})`;
  const limitMs = Math.max(first.p99Ms * t.p99Ratio, first.p99Ms + t.p99SlackMs);
  const limit = `last ≤ max(${t.p99Ratio} × first, first + ${t.p99SlackMs} ms) = ${f(limitMs, 2)} ms`;
  if (first.n < t.p99MinSamples || last.n < t.p99MinSamples) {
    return { name, ok: true, value: `${value}: too few to judge`, limit: `checked from ${t.p99MinSamples} requests per window` };
  }
  return { name, ok: last.p99Ms <= limitMs, value, limit };
}

/**
 * Handles: once the load has stopped and its connections are closed, the server's active libuv
 * resources are back to what they were before it started (give or take `slack`): sockets,
 * timers and streams of finished, failed and cancelled requests were all released.
 */
export function handlesCheck(before: number, after: number, slack: number): Check {
  return {
    name: 'handles released',
    ok: Number.isFinite(before) && Number.isFinite(after) && after <= before + slack,
    value: `${before} active resources before the load, ${after} after it`,
    limit: `after ≤ before + ${slack}`,
  };
}

/** The server: up at every sample, and stopped cleanly (exit 0) after SIGTERM. */
export function serverCheck(scrapeFailures: readonly string[], samples: number, exit: { readonly code: number | null; readonly signal: string | null; readonly diedEarly: boolean }): Check {
  const problems: string[] = [];
  if (exit.diedEarly) problems.push(`the server exited during the run (code ${exit.code}, signal ${exit.signal})`);
  else if (exit.code !== 0) problems.push(`after SIGTERM it exited with code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''}`);
  if (scrapeFailures.length) problems.push(`${scrapeFailures.length} of ${samples + scrapeFailures.length} scrapes of /metrics failed (first: ${scrapeFailures[0]})`);
  return { name: 'server alive', ok: problems.length === 0, value: problems.length ? problems.join('; ') : `answered all ${samples} scrapes, exit 0 after SIGTERM`, limit: 'no failed scrape, exit 0' };
}
