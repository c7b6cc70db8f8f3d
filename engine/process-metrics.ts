/**
 * Process and Node.js runtime metrics under prom-client's default names and meanings (what
 * Node users' dashboards and alerts expect), without the dependency: CPU time, resident
 * memory, start time, V8 heap, external memory, event-loop delay percentiles, GC pauses by
 * kind, active libuv resources. docs/operating.md lists them.
 *
 * The event-loop monitor and the GC observer are process-wide and started once, on the first
 * registry that asks: several servers in one process share them rather than each adding a
 * timer and an observer. Everything else is read at scrape time.
 */
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Histogram, type MetricsRegistry } from './metrics.js';

/** prom-client's GC buckets (seconds). */
const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];

/** perf_hooks' GC kind constants → prom-client's `kind` label values. */
const GC_KINDS: ReadonlyMap<number, string> = new Map([
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
  [perfConstants.NODE_PERFORMANCE_GC_MINOR, 'minor'],
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'],
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
]);

interface ProcessMonitors {
  readonly eventLoop: IntervalHistogram;
  readonly gc: Histogram;
}

let monitors: ProcessMonitors | undefined;

function startMonitors(): ProcessMonitors {
  if (monitors) return monitors;
  // 10 ms resolution, as prom-client: the monitor's timer is unref'd and costs one wake-up per tick.
  const eventLoop = monitorEventLoopDelay({ resolution: 10 });
  eventLoop.enable();
  const gc = new Histogram('nodejs_gc_duration_seconds', 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.', ['kind'], GC_BUCKETS);
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { readonly detail?: { readonly kind?: number } | null }).detail?.kind;
      gc.observe([GC_KINDS.get(kind ?? -1) ?? 'unknown'], entry.duration / 1000);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  monitors = { eventLoop, gc };
  return monitors;
}

/** When this process started, in seconds since the epoch. */
const START_TIME_SECONDS = Math.round(Date.now() / 1000 - process.uptime());

const NO_LABELS: readonly string[] = [];
const one = (value: number): [readonly [readonly [], number]] => [[[], value]];

/** Registers the process and runtime metrics in `registry`. */
export function registerProcessMetrics(registry: MetricsRegistry): void {
  const { eventLoop, gc } = startMonitors();
  const cpu = (pick: (u: NodeJS.CpuUsage) => number) => () => one(pick(process.cpuUsage()) / 1e6);
  registry.collected('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', 'counter', NO_LABELS, cpu((u) => u.user));
  registry.collected('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', 'counter', NO_LABELS, cpu((u) => u.system));
  registry.collected('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', NO_LABELS, cpu((u) => u.user + u.system));
  registry.collected('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', NO_LABELS, () => one(START_TIME_SECONDS));
  registry.collected('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', NO_LABELS, () => one(process.memoryUsage.rss()));
  registry.collected('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', 'gauge', NO_LABELS, () => one(process.memoryUsage().heapTotal));
  registry.collected('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', 'gauge', NO_LABELS, () => one(process.memoryUsage().heapUsed));
  registry.collected('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', 'gauge', NO_LABELS, () => one(process.memoryUsage().external));
  registry.collected(
    'nodejs_active_resources_total',
    'Number of active resources that are currently keeping the event loop alive.',
    'gauge',
    NO_LABELS,
    () => one(process.getActiveResourcesInfo().length),
  );
  // The delay histogram is in nanoseconds. As prom-client, each scrape reports the interval
  // since the previous one (the histogram is reset after reading); NaN before any sample.
  const lag = (pick: (h: IntervalHistogram) => number) => () => one(eventLoop.count > 0 ? pick(eventLoop) / 1e9 : NaN);
  registry.collected('nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.', 'gauge', NO_LABELS, lag((h) => h.mean));
  registry.collected('nodejs_eventloop_lag_p50_seconds', 'The 50th percentile of the recorded event loop delays.', 'gauge', NO_LABELS, lag((h) => h.percentile(50)));
  registry.collected('nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays.', 'gauge', NO_LABELS, lag((h) => h.percentile(99)));
  registry.collected('nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.', 'gauge', NO_LABELS, () => {
    const value = lag((h) => h.max)();
    eventLoop.reset(); // the last lag metric rendered: the next scrape sees a fresh interval
    return value;
  });
  registry.include(gc);
}
