/**
 * The soak's summary (what `--json` prints) and its rendering: the Markdown report and the
 * SVG plot (memory, handles, event-loop delay, p99 per window, throughput over time).
 */
import type { Check, Thresholds } from './checks.js';
import { type Panel, timeChart } from './chart.js';
import type { Sample } from './sampler.js';
import { slope } from './checks.js';

export interface SoakSummary {
  readonly passed: boolean;
  readonly checks: readonly Check[];
  readonly startedAt: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly node: string; readonly loadAvgStart: readonly number[]; readonly loadAvgEnd: readonly number[] };
  readonly settings: {
    readonly durationS: number;
    readonly warmupS: number;
    readonly windowS: number;
    readonly sampleS: number;
    readonly restLoops: number;
    readonly grpcLoops: number;
    readonly servables: readonly string[];
    readonly thresholds: Thresholds;
  };
  readonly requests: number;
  readonly elapsedS: number;
  readonly throughput: number;
  /** CPU cores the server used on average (all its threads). */
  readonly serverCpuCores: number;
  /** CPU cores the soak's own process (the load generator) used on average. */
  readonly generatorCpuCores: number;
  readonly kinds: readonly {
    readonly id: string;
    readonly protocol: string;
    readonly class: string;
    readonly what: string;
    readonly weight: number;
    readonly expected: readonly string[];
    readonly counts: Readonly<Record<string, number>>;
  }[];
  /** The server's own counters at the end (actorserve_requests_total, actorserve_request_failures_total by code). */
  readonly serverSide: { readonly requests: number; readonly failuresByCode: Readonly<Record<string, number>> };
  readonly memory: { readonly rssSlopeMbPerMin: number; readonly heapSlopeMbPerMin: number };
  readonly p99: readonly { readonly id: string; readonly windows: readonly { readonly startS: number; readonly p99Ms: number; readonly n: number }[] }[];
  readonly windowRequests: readonly { readonly startS: number; readonly requests: number }[];
  readonly samples: readonly Sample[];
  readonly scrapeFailures: readonly string[];
  readonly serverExit: { readonly code: number | null; readonly signal: string | null };
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const f = (n: number, d = 1): string => (Number.isFinite(n) ? n.toFixed(d) : '–');
const loads = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(' / ');

/** The least-squares line over the samples after warm-up, as a two-point series. */
function fitLine(samples: readonly Sample[], warmupS: number, pick: (s: Sample) => number): { t: number; y: number }[] {
  const after = samples.filter((s) => s.t >= warmupS);
  if (after.length < 2) return [];
  const pts = after.map((s) => ({ t: s.t, y: pick(s) }));
  const k = slope(pts);
  const mt = pts.reduce((a, p) => a + p.t, 0) / pts.length;
  const my = pts.reduce((a, p) => a + p.y, 0) / pts.length;
  const at = (t: number): number => my + k * (t - mt);
  return [
    { t: pts[0]!.t, y: at(pts[0]!.t) },
    { t: pts[pts.length - 1]!.t, y: at(pts[pts.length - 1]!.t) },
  ];
}

export function soakChart(s: SoakSummary): string {
  const { samples } = s;
  const { warmupS, windowS, durationS } = s.settings;
  const series = (pick: (x: Sample) => number) => samples.map((x) => ({ t: x.t, y: pick(x) }));
  const mid = (startS: number): number => startS + windowS / 2;
  const panels: Panel[] = [
    {
      title: `Server resident memory (least-squares slope after warm-up: ${f(s.memory.rssSlopeMbPerMin, 2)} MB/min)`,
      yLabel: 'MB',
      fitY: true,
      series: [
        { name: 'RSS', color: COLORS[0]!, points: series((x) => x.rssMb) },
        { name: 'fit after warm-up', color: COLORS[0]!, dashed: true, points: fitLine(samples, warmupS, (x) => x.rssMb) },
      ],
    },
    {
      title: `Main thread V8 heap and external memory (heap used slope ${f(s.memory.heapSlopeMbPerMin, 2)} MB/min)`,
      yLabel: 'MB',
      series: [
        { name: 'heap used', color: COLORS[1]!, points: series((x) => x.heapUsedMb) },
        { name: 'heap total', color: COLORS[1]!, dashed: true, points: series((x) => x.heapTotalMb) },
        { name: 'external', color: COLORS[3]!, points: series((x) => x.externalMb) },
      ],
    },
    { title: 'Active handles (libuv resources)', yLabel: 'count', series: [{ name: 'active resources', color: COLORS[2]!, points: series((x) => x.activeResources) }] },
    {
      title: 'Event-loop delay since the previous sample',
      yLabel: 'ms',
      series: [
        { name: 'p99', color: COLORS[3]!, points: series((x) => x.eventLoopP99Ms) },
        { name: 'max', color: COLORS[4]!, dashed: true, points: series((x) => x.eventLoopMaxMs) },
      ],
    },
    {
      title: `p99 latency of good requests per ${f(windowS, 0)} s window`,
      yLabel: 'ms',
      series: s.p99.map((p, i) => ({ name: p.id, color: COLORS[i % COLORS.length]!, points: p.windows.map((w) => ({ t: mid(w.startS), y: w.n > 0 ? w.p99Ms : NaN })) })),
    },
    { title: 'Throughput (all kinds)', yLabel: 'requests/s', series: [{ name: 'requests/s', color: COLORS[5]!, points: s.windowRequests.map((w) => ({ t: mid(w.startS), y: w.requests / windowS })) }] },
  ];
  return timeChart({
    title: `actorserve soak: ${f(durationS / 60, 1)} min at saturation, REST + gRPC, good + bad + cancelled`,
    subtitle: `${s.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${s.machine.cpus} cores, load average ${loads(s.machine.loadAvgStart)} (start) → ${loads(s.machine.loadAvgEnd)} (end)`,
    durationS,
    warmupS,
    panels,
  });
}

export function soakMarkdown(s: SoakSummary, svgName: string): string {
  const st = s.settings;
  const out: string[] = [];
  out.push('# actorserve soak report', '');
  out.push(
    `Generated by \`npm run perf:soak\` (perf/soak/run.ts; perf/soak/README.md explains the mix and the checks) on ${s.startedAt.slice(0, 19).replace('T', ' ')} UTC. ` +
      `**Verdict: ${s.passed ? 'PASSED' : 'FAILED'}.**`,
    '',
  );
  out.push('## Setup', '');
  out.push(`- Machine: ${s.machine.cpus} × ${s.machine.cpuModel}, Node.js ${s.machine.node}. Load average (1/5/15 min) ${loads(s.machine.loadAvgStart)} at the start, ${loads(s.machine.loadAvgEnd)} at the end (the machine is shared: other work ran beside the soak).`);
  out.push(`- Server: \`actorserve serve --servables ${st.servables.join(',')}\` (bundled examples) in a child process, REST and gRPC on loopback.`);
  out.push(
    `- Load: ${st.restLoops} REST + ${st.grpcLoops} gRPC closed loops (each sends its next request when the previous one ended) for ${f(st.durationS, 0)} s; the first ${f(st.warmupS, 0)} s are warm-up, not judged. ` +
      `${s.requests} requests, ${f(s.throughput, 0)} requests/s on average.`,
  );
  out.push(`- CPU: the server used ${f(s.serverCpuCores, 2)} cores on average, the load generator (this script, one thread) ${f(s.generatorCpuCores, 2)} cores, of ${s.machine.cpus}.`);
  out.push(`- Samples of /metrics every ${f(st.sampleS, 1)} s (${s.samples.length}); p99 per ${f(st.windowS, 0)} s window.`, '');
  out.push('## Checks', '');
  out.push('| check | result | measured | limit |', '| --- | --- | --- | --- |');
  for (const c of s.checks) out.push(`| ${c.name} | ${c.ok ? 'pass' : '**FAIL**'} | ${c.value} | ${c.limit} |`);
  out.push('');
  out.push(`Memory slopes after warm-up (least squares): RSS **${f(s.memory.rssSlopeMbPerMin, 2)} MB/min**, V8 heap used ${f(s.memory.heapSlopeMbPerMin, 2)} MB/min (shown, not judged: the heap saw-tooths with garbage collection).`, '');
  out.push(`![soak: memory, handles, event-loop delay, p99 and throughput over time](${svgName})`, '');
  out.push('## Requests by kind and outcome', '');
  out.push('| kind | class | what | share | outcomes | intended |', '| --- | --- | --- | --- | --- | --- |');
  const total = (p: string) => s.kinds.filter((k) => k.protocol === p).reduce((a, k) => a + k.weight, 0);
  for (const k of s.kinds) {
    const counts = Object.entries(k.counts)
      .sort((a, b) => b[1] - a[1])
      .map(([o, n]) => (k.expected.includes(o) ? `${o} ${n}` : `**${o} ${n}**`))
      .join(', ');
    out.push(`| ${k.id} | ${k.class} | ${k.what} | ${f((100 * k.weight) / total(k.protocol), 1)} % | ${counts || '–'} | ${k.expected.join(', ')} |`);
  }
  out.push('');
  const codes = Object.entries(s.serverSide.failuresByCode).sort((a, b) => b[1] - a[1]);
  out.push(
    `The server's own count (\`actorserve_requests_total\`, \`actorserve_request_failures_total\` by code): ${s.serverSide.requests} requests; failures ${codes.length ? codes.map(([c, n]) => `${c || '(none)'} ${n}`).join(', ') : 'none'}.`,
    '',
  );
  out.push('## p99 latency per window (good requests that succeeded)', '');
  const ids = s.p99.map((p) => p.id);
  out.push(`| window (s) | ${ids.join(' | ')} | requests/s |`, `| --- | ${ids.map(() => '---').join(' | ')} | --- |`);
  s.windowRequests.forEach((w, i) => {
    const cells = s.p99.map((p) => {
      const x = p.windows[i];
      return x && x.n > 0 ? `${f(x.p99Ms, 2)} ms (n=${x.n})` : '–';
    });
    const tag = w.startS < st.warmupS - 1e-9 ? ' (warm-up)' : '';
    out.push(`| ${f(w.startS, 0)}–${f(w.startS + st.windowS, 0)}${tag} | ${cells.join(' | ')} | ${f(w.requests / st.windowS, 0)} |`);
  });
  out.push('');
  if (s.scrapeFailures.length) out.push('Failed scrapes: ' + s.scrapeFailures.join('; '), '');
  return out.join('\n');
}
