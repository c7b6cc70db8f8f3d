/**
 * The soak's view of the server process: every few seconds it scrapes the server's own
 * `GET /metrics` (prom-client's process metrics, engine/process-metrics.ts) for resident
 * memory, V8 heap used, active libuv resources, event-loop delay and CPU time, and reads
 * VmRSS from /proc/<pid>/status (Linux) as a cross-check that needs no working server.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';

export interface Sample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly rssMb: number;
  readonly heapUsedMb: number;
  readonly heapTotalMb: number;
  /** Memory of C++ objects bound to JS objects (Buffers, ArrayBuffers). */
  readonly externalMb: number;
  readonly activeResources: number;
  readonly eventLoopP99Ms: number;
  readonly eventLoopMaxMs: number;
  readonly cpuSeconds: number;
  /** VmRSS from /proc, NaN off Linux. */
  readonly procRssMb: number;
}

const SCRAPE_TIMEOUT_MS = 10_000;

/** The value of an unlabelled metric in Prometheus text, NaN when absent. */
export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Sums of a labelled counter by one label's value: `{code="E_CANCELLED"} 3` lines → {E_CANCELLED: 3}. */
export function sumByLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const v = new RegExp(`(?:^|,)${label}="([^"]*)"`).exec(m[1]!)?.[1] ?? '';
    out[v] = (out[v] ?? 0) + Number(m[2]);
  }
  return out;
}

export function scrape(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/metrics', agent: false, timeout: SCRAPE_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics answered ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET /metrics: no reply within ${SCRAPE_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

function procRssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

const MB = 1024 * 1024;

/** One sample of the server (throws when /metrics cannot be read). */
export async function sample(host: string, port: number, pid: number, t: number): Promise<Sample> {
  const text = await scrape(host, port);
  const v = (name: string): number => metricValue(text, name);
  return {
    t,
    rssMb: v('process_resident_memory_bytes') / MB,
    heapUsedMb: v('nodejs_heap_size_used_bytes') / MB,
    heapTotalMb: v('nodejs_heap_size_total_bytes') / MB,
    externalMb: v('nodejs_external_memory_bytes') / MB,
    activeResources: v('nodejs_active_resources_total'),
    eventLoopP99Ms: v('nodejs_eventloop_lag_p99_seconds') * 1000,
    eventLoopMaxMs: v('nodejs_eventloop_lag_max_seconds') * 1000,
    cpuSeconds: v('process_cpu_seconds_total'),
    procRssMb: procRssMb(pid),
  };
}
