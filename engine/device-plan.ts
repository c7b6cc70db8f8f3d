/**
 * Device actors × intra-op threads when the user names neither (`deviceIds`, `intraOpThreads`):
 * chosen from the core count and the model's cost, measured once at load as the time one
 * instance takes through every model on one intra-op thread (a warm-up inference of zeros in
 * the first device actor). A pure function, so its decisions are tested with given core counts
 * and costs; docs/configuration.md ("Device actors and threads by default") states the rule.
 *
 * The rule:
 * 1. Cores worth of compute: one instance's compute time over the main thread's time per
 *    request (MAIN_THREAD_US_PER_REQUEST), rounded up, between 1 and the core count. The main
 *    thread (transport, decode, scheduling) is one thread, so a model faster than it needs no
 *    second core: more copies or threads would only wait for it, and intra-op threads add
 *    a hand-off to every run (latency). A model that takes milliseconds per instance gets
 *    every core.
 * 2. Those cores go to device actors first (whole batches in parallel, no synchronisation
 *    inside a run; measured faster than intra-op threads on 2 cores, perf/auto-devices-report.md),
 *    up to MAX_AUTO_ACTORS copies of the model and as many as fit in MEMORY_SHARE of the free
 *    memory, then to intra-op threads per actor: the split that uses the most cores, ties to
 *    more actors.
 * 3. What the user names wins: with `deviceIds` given, the threads fill the cores among those
 *    actors; with `intraOpThreads` given, the actors do. A cost that could not be measured (a
 *    string input, a model that refuses zeros) counts as cheap: 1 actor × 1 thread, the old
 *    default. CUDA devices are not planned: device 0, 1 thread, unless named.
 */

/** Main-thread CPU per REST request the rule compares compute against (measured ~50 µs for REST add, issue 16). */
export const MAIN_THREAD_US_PER_REQUEST = 50;
/** Most device actors (model copies) the rule starts; more cores become intra-op threads. */
export const MAX_AUTO_ACTORS = 4;
/** Share of the free memory the model copies may take. */
export const MEMORY_SHARE = 0.25;

export interface DevicePlanInput {
  /** `os.availableParallelism()`. */
  readonly cores: number;
  /** One instance through every model on one intra-op thread, in ms; undefined when not measured. */
  readonly instanceMs: number | undefined;
  /** The warm-up batch the cost was measured in (for the log; 1 or absent: single instances). */
  readonly measuredBatch?: number;
  /** Why the cost is unknown (for the log), when `instanceMs` is undefined. */
  readonly unmeasured?: string;
  /** Bytes of the model files (one copy per actor). */
  readonly modelBytes: number;
  readonly freeMemoryBytes: number;
  readonly deviceType: 'cpu' | 'cuda';
  /** What the user named; undefined = choose. */
  readonly deviceIds: readonly number[] | undefined;
  readonly intraOpThreads: number | undefined;
}

export interface DevicePlan {
  readonly deviceIds: readonly number[];
  readonly intraOpThreads: number;
  /** For the startup log: how the numbers were chosen ("auto: 2 cores, ..." or "as configured"). */
  readonly reason: string;
}

/** Whether the plan needs the model's cost (something is left to choose on a CPU servable). */
export function needsCost(deviceType: 'cpu' | 'cuda', deviceIds: readonly number[] | undefined, intraOpThreads: number | undefined): boolean {
  return deviceType === 'cpu' && (deviceIds === undefined || intraOpThreads === undefined);
}

/** Cores worth of compute for a model whose instance takes `instanceMs` (rule step 1). */
export function computeCores(instanceMs: number | undefined, cores: number): number {
  if (instanceMs === undefined || !(instanceMs > 0)) return 1;
  return Math.max(1, Math.min(Math.floor(cores), Math.ceil((instanceMs * 1000) / MAIN_THREAD_US_PER_REQUEST)));
}

/** Actors × threads for `budget` cores with at most `maxActors` actors (rule step 2). */
export function splitCores(budget: number, maxActors: number): { actors: number; threads: number } {
  let best = { actors: 1, threads: Math.max(1, budget) };
  for (let a = 2; a <= Math.min(budget, maxActors); a++) {
    const threads = Math.floor(budget / a);
    if (a * threads >= best.actors * best.threads) best = { actors: a, threads };
  }
  return best;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Device ids 0..n-1. */
const firstIds = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

export function planDevices(input: DevicePlanInput): DevicePlan {
  const { deviceIds, intraOpThreads } = input;
  if (!needsCost(input.deviceType, deviceIds, intraOpThreads)) {
    return { deviceIds: deviceIds ?? [0], intraOpThreads: intraOpThreads ?? 1, reason: deviceIds && intraOpThreads ? 'as configured' : `${input.deviceType}: not planned` };
  }
  const cores = Math.max(1, Math.floor(input.cores));
  const budget = computeCores(input.instanceMs, cores);
  const memoryCap = input.modelBytes > 0 ? Math.max(1, Math.floor((input.freeMemoryBytes * MEMORY_SHARE) / input.modelBytes)) : MAX_AUTO_ACTORS;
  const cost =
    input.instanceMs === undefined
      ? `cost not measured (${input.unmeasured ?? 'unknown'}): counted as cheap`
      : `one instance ${formatMs(input.instanceMs)} on 1 thread${(input.measuredBatch ?? 1) > 1 ? ` (in a batch of ${input.measuredBatch})` : ''} → ${plural(budget, 'core')} of compute`;
  const why = (chosen: string): string => `auto: ${plural(cores, 'core')}, ${cost}${chosen}`;
  if (deviceIds !== undefined) {
    return { deviceIds, intraOpThreads: Math.max(1, Math.floor(budget / deviceIds.length)), reason: why('; device ids as configured') };
  }
  if (intraOpThreads !== undefined) {
    const actors = Math.max(1, Math.min(Math.floor(budget / intraOpThreads), MAX_AUTO_ACTORS, memoryCap));
    return { deviceIds: firstIds(actors), intraOpThreads, reason: why('; intra-op threads as configured') };
  }
  const { actors, threads } = splitCores(budget, Math.min(MAX_AUTO_ACTORS, memoryCap));
  const capped = memoryCap < Math.min(budget, MAX_AUTO_ACTORS) ? `; ${memoryCap} model cop${memoryCap === 1 ? 'y' : 'ies'} fit in ${MEMORY_SHARE * 100} % of free memory` : '';
  return { deviceIds: firstIds(actors), intraOpThreads: threads, reason: why(capped) };
}

function formatMs(ms: number): string {
  return ms >= 10 ? `${ms.toFixed(0)} ms` : ms >= 0.1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`;
}

/** The startup log's words for a plan: "2 device actors × 1 intra-op thread (auto: ...)". */
export function describePlan(plan: DevicePlan): string {
  return `${plural(plan.deviceIds.length, 'device actor')} × ${plural(plan.intraOpThreads, 'intra-op thread')} (${plan.reason})`;
}
