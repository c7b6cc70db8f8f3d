/**
 * `npm run perf:soak`: a saturation soak of `actorserve serve` (in a child process) on REST and
 * gRPC at once with a mix of good, bad and cancelled requests. Every few seconds it samples the
 * server's resident memory, V8 heap, active handles and event-loop delay from its /metrics;
 * at the end it writes a Markdown report and an SVG plot and judges the run:
 *
 *   - memory flat after warm-up: least-squares slope of RSS ≤ --max-slope MB/min
 *   - no outcome other than the intended ones (each kind lists its own), every kind sent
 *   - p99 stable: per good kind, the last window's p99 within --p99-ratio × (or
 *     --p99-slack-ms above) the first window's after warm-up
 *   - handles released: active libuv resources back to their idle count after the load
 *   - the server answered every scrape and exited 0 after SIGTERM
 *
 * It exits 1 when a check fails (2 on bad flags, 3 when it could not run at all).
 *
 *   npm run build && node dist/perf/soak/run.js [--duration 10m] [--warmup 2m|20%]
 *       [--rest-loops 16] [--grpc-loops 8] [--servables add,resnet] [--servable-dir DIR]
 *       [--max-slope 5] [--p99-ratio 3] [--p99-slack-ms 50] [--sample-s N] [--windows 10]
 *       [--max-requests 20000000] [--report perf/soak-report.md] [--json]
 *
 * --json prints the summary (checks, counts, samples) as one JSON line on stdout; progress
 * goes to stderr. The report's plot is written beside it as soak.svg.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findProjectRoot } from '../../servables/generate-models.js';
import { sampleJpeg } from '../suite/servables.js';
import { type Check, type Thresholds, handlesCheck, memoryCheck, outcomeChecks, p99Check, serverCheck } from './checks.js';
import { runLoad } from './load.js';
import { type Sample, sample, scrape, sumByLabel } from './sampler.js';
import { startServer } from './server.js';
import { type SoakSummary, soakChart, soakMarkdown } from './report.js';
import { requestKinds } from './traffic.js';

class UsageError extends Error {}

/** Pause between the end of the load and the last sample (the handles check). */
const HANDLES_SETTLE_MS = 2000;
/** Active resources the server may hold after the load beyond those it held before it. */
const HANDLES_SLACK = 8;

/** "10m", "60s", "90" (seconds), "1.5m" → milliseconds. */
function parseDuration(s: string, atLeastMs = 5000): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new UsageError(`not a duration: '${s}' (examples: 60s, 10m, 90)`);
  const n = Number(m[1]);
  const ms = n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  if (!(ms >= atLeastMs)) throw new UsageError(`a duration of at least ${atLeastMs / 1000} s is needed, got '${s}'`);
  return ms;
}

function positive(name: string, s: string, integer = false): number {
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${s}'`);
  return n;
}

function log(line: string): void {
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/**
 * Default slope limit (perf/soak/README.md has the measurements behind it): after warm-up the
 * server's RSS swings by ±20–30 MB over tens of seconds (worker threads' V8 heaps and native
 * buffers growing and being collected while resnet runs), so a 30 s judged stretch of a 60 s
 * CI run showed slopes up to +30 MB/min with no leak; 45 MB/min still fails a 1 MiB/s
 * leak (63 MB/min). Ten minutes average the swings out: 5 MB/min.
 */
function defaultMaxSlope(durationMs: number): number {
  return durationMs >= 5 * 60_000 ? 5 : 45;
}

/** Default warm-up: a fifth of the run, at least 30 s (RSS climbs for about 30 s after the load starts), at most half of it. */
function defaultWarmupMs(durationMs: number): number {
  return Math.min(durationMs / 2, Math.max(30_000, durationMs / 5));
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '10m' },
      warmup: { type: 'string' },
      'rest-loops': { type: 'string', default: '16' },
      'grpc-loops': { type: 'string', default: '8' },
      servables: { type: 'string', default: 'add,resnet' },
      'servable-dir': { type: 'string' },
      'max-slope': { type: 'string' },
      'p99-ratio': { type: 'string', default: '3' },
      'p99-slack-ms': { type: 'string', default: '50' },
      'sample-s': { type: 'string' },
      windows: { type: 'string', default: '10' },
      'max-requests': { type: 'string', default: '20000000' },
      report: { type: 'string', default: 'perf/soak-report.md' },
      json: { type: 'boolean', default: false },
    },
  });
  const durationMs = parseDuration(values.duration);
  const warmupMs =
    values.warmup === undefined ? defaultWarmupMs(durationMs)
    : values.warmup.endsWith('%') ? (durationMs * positive('warmup', values.warmup.slice(0, -1))) / 100
    : parseDuration(values.warmup, 0);
  if (warmupMs >= durationMs) throw new UsageError('--warmup must be shorter than --duration');
  const windows = positive('windows', values.windows, true);
  const windowMs = durationMs / windows;
  const sampleMs = values['sample-s'] ? positive('sample-s', values['sample-s']) * 1000 : Math.min(5000, Math.max(1000, durationMs / 120));
  const thresholds: Thresholds = {
    maxSlopeMbPerMin: values['max-slope'] ? positive('max-slope', values['max-slope']) : defaultMaxSlope(durationMs),
    p99Ratio: positive('p99-ratio', values['p99-ratio']),
    p99SlackMs: positive('p99-slack-ms', values['p99-slack-ms']),
    p99MinSamples: 100,
  };
  const restLoops = positive('rest-loops', values['rest-loops'], true);
  const grpcLoops = positive('grpc-loops', values['grpc-loops'], true);
  const maxRequests = positive('max-requests', values['max-requests'], true);
  const servables = values.servables.split(',').map((s) => s.trim());
  if (!servables.includes('add')) throw new UsageError('--servables must include add (the mix is built on it)');

  const root = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));
  const reportFile = path.resolve(root, values.report);
  const loadAvgStart = os.loadavg();
  const startedAt = new Date();
  log(`starting actorserve serve (${servables.join(', ')}); load average ${loadAvgStart.map((l) => l.toFixed(2)).join(' ')}`);
  const server = await startServer(root, ['--servables', servables.join(','), ...(values['servable-dir'] ? ['--servable-dir', values['servable-dir']] : [])], 180_000);
  const resnetBody = servables.includes('resnet') ? JSON.stringify({ instances: { image: { b64: (await sampleJpeg()).toString('base64') } } }) : undefined;
  const kinds = requestKinds(server.rest, { resnetBody });

  const samples: Sample[] = [];
  const scrapeFailures: string[] = [];
  let diedEarly = false;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const takeSample = async (): Promise<void> => {
    const t = (performance.now() - t0) / 1000;
    if (server.exit()) {
      diedEarly = true;
      return;
    }
    try {
      const s = await sample(server.rest.host, server.rest.port, server.pid, t);
      samples.push(s);
      log(`t=${t.toFixed(0)} s  rss ${s.rssMb.toFixed(1)} MB  heap ${s.heapUsedMb.toFixed(1)} MB  handles ${s.activeResources}  loop p99 ${s.eventLoopP99Ms.toFixed(1)} ms`);
    } catch (err) {
      scrapeFailures.push(`t=${t.toFixed(0)} s: ${(err as Error).message}`);
      log(`t=${t.toFixed(0)} s  scrape failed: ${(err as Error).message}`);
    }
  };
  await takeSample();
  let sampling = Promise.resolve();
  const timer = setInterval(() => {
    sampling = sampling.then(takeSample);
  }, sampleMs);
  log(`load: ${restLoops} REST + ${grpcLoops} gRPC closed loops for ${durationMs / 1000} s (warm-up ${warmupMs / 1000} s, ${windows} windows, a sample every ${sampleMs / 1000} s)`);
  const load = await runLoad({ rest: server.rest, grpc: server.grpc, kinds, restLoops, grpcLoops, durationMs, windowMs, maxRequests });
  clearInterval(timer);
  await sampling;
  // the loops have closed their connections: give the server a moment to see them go
  await new Promise((r) => setTimeout(r, HANDLES_SETTLE_MS));
  await takeSample();
  const generatorCpuS = ((c) => (c.user + c.system) / 1e6)(process.cpuUsage(cpu0));
  let serverFailures: Record<string, number> = {};
  let serverRequests = 0;
  if (!server.exit()) {
    try {
      const text = await scrape(server.rest.host, server.rest.port);
      serverFailures = sumByLabel(text, 'actorserve_request_failures_total', 'code');
      serverRequests = Object.values(sumByLabel(text, 'actorserve_requests_total', 'transport')).reduce((a, b) => a + b, 0);
    } catch (err) {
      scrapeFailures.push(`final: ${(err as Error).message}`);
    }
  }
  if (server.exit()) diedEarly = true;
  const exit = await server.stop(30_000);
  log(`server stopped (code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''})`);

  const warmupS = warmupMs / 1000;
  const judged = load.windows.filter((w) => w.startS >= warmupS - 1e-9);
  const goodKinds = kinds.filter((k) => k.class === 'good');
  const p99 = goodKinds.map((k) => ({
    id: k.id,
    windows: load.windows.map((w) => {
      const h = w.latency.get(k.id);
      return { startS: w.startS, p99Ms: h ? h.quantileMs(0.99) : NaN, n: h ? h.count : 0 };
    }),
  }));
  const pairOf = (id: string) => {
    const at = (w: (typeof judged)[number] | undefined) => {
      const h = w?.latency.get(id);
      return { p99Ms: h ? h.quantileMs(0.99) : NaN, n: h ? h.count : 0 };
    };
    return { id, first: at(judged[0]), last: at(judged[judged.length - 1]) };
  };
  const rss = memoryCheck('memory flat: RSS', samples.map((s) => ({ t: s.t, mb: s.rssMb })), warmupS, thresholds.maxSlopeMbPerMin);
  const heap = memoryCheck('memory flat: heap used', samples.map((s) => ({ t: s.t, mb: s.heapUsedMb })), warmupS, thresholds.maxSlopeMbPerMin);
  const checks: Check[] = [
    { name: rss.name, ok: rss.ok, value: rss.value, limit: rss.limit },
    ...outcomeChecks(kinds.map((k) => ({ id: k.id, expected: k.expected, counts: load.outcomes.get(k.id)! }))),
    ...goodKinds.map((k) => p99Check(pairOf(k.id), thresholds)),
    handlesCheck(samples[0]?.activeResources ?? NaN, samples.length > 1 ? samples[samples.length - 1]!.activeResources : NaN, HANDLES_SLACK),
    serverCheck(scrapeFailures, samples.length, { ...exit, diedEarly }),
  ];
  const cpuS = samples.length >= 2 ? samples[samples.length - 1]!.cpuSeconds - samples[0]!.cpuSeconds : NaN;
  const elapsedS = load.elapsedMs / 1000;
  const summary: SoakSummary = {
    passed: checks.every((c) => c.ok),
    checks,
    startedAt: startedAt.toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadAvgStart, loadAvgEnd: os.loadavg() },
    settings: { durationS: durationMs / 1000, warmupS, windowS: windowMs / 1000, sampleS: sampleMs / 1000, restLoops, grpcLoops, servables, thresholds },
    requests: load.requests,
    elapsedS,
    throughput: load.requests / elapsedS,
    serverCpuCores: cpuS / elapsedS,
    generatorCpuCores: generatorCpuS / elapsedS,
    kinds: kinds.map((k) => ({ id: k.id, protocol: k.protocol, class: k.class, what: k.what, weight: k.weight, expected: k.expected, counts: Object.fromEntries(load.outcomes.get(k.id)!) })),
    serverSide: { requests: serverRequests, failuresByCode: serverFailures },
    memory: { rssSlopeMbPerMin: rss.slopeMbPerMin, heapSlopeMbPerMin: heap.slopeMbPerMin },
    p99,
    windowRequests: load.windows.map((w) => ({ startS: w.startS, requests: w.requests })),
    samples,
    scrapeFailures,
    serverExit: exit,
  };

  await mkdir(path.dirname(reportFile), { recursive: true });
  const svgFile = path.join(path.dirname(reportFile), 'soak.svg');
  await writeFile(svgFile, soakChart(summary));
  await writeFile(reportFile, soakMarkdown(summary, path.basename(svgFile)));
  log(`wrote ${path.relative(root, reportFile)} and ${path.relative(root, svgFile)}`);
  for (const c of checks) log(`${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.value} (${c.limit})`);
  if (!summary.passed) log(`server output (tail):\n${server.output().slice(-2000)}`);
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  return summary.passed ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const usage = err instanceof UsageError || String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    log(usage ? `usage: ${(err as Error).message}` : `could not run: ${(err as Error).stack ?? String(err)}`);
    process.exit(usage ? 2 : 3);
  },
);
