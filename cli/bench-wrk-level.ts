/**
 * One REST concurrency level on wrk (cli/bench-wrk.ts) as a LevelResult, the same shape the
 * JS generator's runLevel gives: an unmeasured wrk run for the warm-up, then the measured one;
 * wrk's failure counts by kind (HTTP status ≥ 400, connect/read/write errors, timeouts) with
 * a sample message from one request of bench's own client after the level; wrk's CPU and the
 * server's (serverPid) over the measured run.
 */
import { type LevelOptions, type LevelResult, type Plan, cpuFields, levelResult, sampleRequest } from './bench-load.js';
import type { Failure } from './bench-failure.js';
import { type WrkSummary, runWrk, wrkThreads, writeWrkScript } from './bench-wrk.js';
import { processCpuSeconds } from './proc-cpu.js';

/** The failure kinds wrk counts, as the report names them. */
export const WRK_KINDS = {
  status: 'HTTP status >= 400',
  connect: 'connect error',
  read: 'read error',
  write: 'write error',
  timeout: 'timeout',
} as const;

/** Failure counts by kind from wrk's summary (kinds with none left out). */
export function wrkErrors(s: WrkSummary): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, name] of Object.entries(WRK_KINDS)) {
    const n = s[k as keyof typeof WRK_KINDS];
    if (n > 0) out[name] = n;
  }
  return out;
}

/** Which of wrk's kinds a failure of bench's own client belongs to. */
function wrkKindOf(f: Failure): string {
  if (f.kind === 'timeout') return WRK_KINDS.timeout;
  if (f.connection) return f.kind === 'connection refused' ? WRK_KINDS.connect : WRK_KINDS.read;
  return WRK_KINDS.status;
}

/** Runs one level with wrk; `plan` must be REST on TCP. Duration mode only (wrk runs for a time). */
export async function runWrkLevel(plan: Plan, wrk: string, options: LevelOptions): Promise<LevelResult> {
  const { concurrency } = options;
  if (plan.protocol !== 'rest' || !plan.rest || plan.rest.socketPath) throw new RangeError('wrk drives REST over TCP only');
  if (options.durationMs === undefined) throw new RangeError('wrk runs for a duration: give durationMs');
  const threads = wrkThreads(concurrency, plan.workers);
  const script = await writeWrkScript(plan.payload);
  const base = { wrk, url: `${plan.label}${plan.payload.path}`, scriptFile: script.file, concurrency, threads, timeoutMs: plan.timeoutMs };
  let progress: NodeJS.Timeout | undefined;
  try {
    const tick = options.onProgress;
    if ((options.warmupMs ?? 0) > 0) {
      tick?.({ elapsedMs: 0 });
      await runWrk({ ...base, durationMs: options.warmupMs! });
    }
    let serverFrom: number | undefined;
    let startedAt = 0;
    const run = await runWrk({
      ...base,
      durationMs: options.durationMs,
      endpoint: plan.rest,
      onStart: () => {
        startedAt = performance.now();
        if (options.serverPid !== undefined) serverFrom = processCpuSeconds(options.serverPid);
        options.onWindow?.('start');
        if (tick) progress = setInterval(() => tick({ elapsedMs: performance.now() - startedAt }), 250);
      },
    });
    clearInterval(progress);
    options.onWindow?.('end');
    const serverTo = options.serverPid !== undefined ? processCpuSeconds(options.serverPid) : undefined;
    const s = run.summary;
    const errorsByKind = wrkErrors(s);
    const errors = Object.values(errorsByKind).reduce((a, b) => a + b, 0);
    const ok = Math.max(0, s.requests - s.status);
    const errorSamples: Record<string, string> = {};
    if (errors > 0 && run.unreachableFromMs === undefined) {
      // wrk counts failures without their messages: one request of bench's own client says what they look like
      const f = await sampleRequest(plan);
      if (f) errorSamples[wrkKindOf(f)] = `${f.kind}: ${f.message}`;
    }
    const measured = s.durationUs / 1e6;
    const seconds = run.unreachableFromMs !== undefined ? Math.min(measured, run.unreachableFromMs / 1000) : measured;
    const ms = (us: number): number => us / 1000;
    const latencyMs = s.requests > 0 ? { min: ms(s.min), mean: ms(s.mean), p50: ms(s.p50), p90: ms(s.p90), p99: ms(s.p99), max: ms(s.max) } : { min: NaN, mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN };
    const server = serverFrom !== undefined && serverTo !== undefined ? serverTo - serverFrom : undefined;
    const level = levelResult(plan, {
      concurrency,
      workers: threads,
      ok,
      errorsByKind,
      errorSamples,
      seconds,
      latencyMs,
      ...(run.unreachableFromMs !== undefined ? { unreachableFromSeconds: Math.max(1e-6, seconds) } : {}),
      generator: 'wrk',
    });
    return { ...level, ...cpuFields(level.requests, s.cpuSeconds, server) };
  } finally {
    clearInterval(progress);
    await script.remove();
  }
}
