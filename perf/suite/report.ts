/**
 * perf/report.md and perf/plots/*.svg from one suite run: machine, settings, goals, one
 * section per workload (table of medians with min–max over the repeats, ratios to the
 * baseline, plots), the raw onnxruntime-node loop, and how the numbers were taken.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LevelResult } from '../../cli/bench-load.js';
import type { Protocol } from '../../cli/bench-input.js';
import { type Spread, num, pairedRatio, spread, withRange } from './stats.js';
import { type Series, lineChart } from './svg.js';

export type TargetId = 'actorserve' | 'fastify' | 'uws' | 'grpc-echo';

export interface Workload {
  readonly id: string;
  readonly title: string;
  readonly what: string;
  readonly protocol: Protocol;
  readonly servable: string;
  readonly method: string;
  readonly input: 'add' | 'mlp' | 'resnet';
  readonly targets: readonly TargetId[];
  readonly baseline: TargetId;
}

/** One cell: the load result plus the CPU used meanwhile (in cores), when /proc can say. */
export interface CellResult extends LevelResult {
  readonly serverCores?: number;
  readonly clientCores?: number;
}

/** results[workload][target][concurrency] = one CellResult per repeat. */
export type SuiteResults = Record<string, Record<string, Record<number, CellResult[]>>>;

export interface OrtLoopResult {
  readonly rows: { model: string; batch: number; cells: { callsPerSecond: number; instancesPerSecond: number; p50Ms: number; p99Ms: number }[] }[];
}

export interface ReportInput {
  readonly reportPath: string;
  readonly plotsDir: string;
  readonly workloads: readonly Workload[];
  readonly results: SuiteResults;
  readonly ort: OrtLoopResult | undefined;
  readonly concurrency: readonly number[];
  readonly settings: {
    readonly cellMs: number;
    readonly repeats: number;
    readonly warmupMs: number;
    readonly workers: number;
    readonly intraOpThreads: number;
    readonly deviceIds: string;
    readonly mlpMaxBatch: number;
    /** Cells shortened to keep to the time budget. */
    readonly shortened: { readonly count: number; readonly minMs: number } | undefined;
    /** What drove the REST cells (absent in results saved before wrk: the JS generator). */
    readonly restGenerator?: 'wrk' | 'js';
  };
  readonly machine: {
    readonly cpu: string;
    readonly cores: number;
    readonly memoryGiB: number;
    readonly os: string;
    readonly node: string;
    readonly versions: Record<string, string>;
    readonly loadStart: readonly number[];
    readonly loadEnd: readonly number[];
  };
  readonly startedAt: Date;
  readonly seconds: number;
}

export const TARGET_NAMES: Record<TargetId, string> = {
  actorserve: 'actorserve',
  fastify: 'Fastify + onnxruntime-node',
  uws: 'bare uWS responder (HTTP ceiling)',
  'grpc-echo': 'bare grpc-js echo (gRPC ceiling)',
};

/** Short names for plot legends. */
export const TARGET_SHORT: Record<TargetId, string> = {
  actorserve: 'actorserve',
  fastify: 'Fastify + ORT',
  uws: 'bare uWS',
  'grpc-echo': 'grpc-js echo',
};

export const TARGET_COLORS: Record<TargetId, string> = {
  actorserve: '#1f77b4',
  fastify: '#ff7f0e',
  uws: '#7f7f7f',
  'grpc-echo': '#2ca02c',
};

type Metric = (r: CellResult) => number;
const RPS: Metric = (r) => r.requestsPerSecond;
const IPS: Metric = (r) => r.instancesPerSecond;

function cellSpread(results: SuiteResults, w: string, t: string, c: number, m: Metric): Spread {
  return spread((results[w]?.[t]?.[c] ?? []).map(m));
}

/** Requests/s of (w1, t1) over (w2, t2) at concurrency c, repeat by repeat. */
function cellRatio(results: SuiteResults, w1: string, t1: string, w2: string, t2: string, c: number): Spread {
  return pairedRatio((results[w1]?.[t1]?.[c] ?? []).map(RPS), (results[w2]?.[t2]?.[c] ?? []).map(RPS));
}

function table(headers: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const sep = headers.map((_, i) => (align?.[i] === 'r' ? '---:' : '---'));
  return [headers, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

interface Goal {
  readonly name: string;
  readonly measured: Spread | undefined;
  readonly target: number;
  readonly unit: 'x' | '%';
  readonly detail: string;
}

function goals(input: ReportInput, c: number): Goal[] {
  const r = input.results;
  const has = (w: string, t: string): boolean => (r[w]?.[t]?.[c]?.length ?? 0) > 0;
  const rel = (w1: string, t1: string, w2: string, t2: string): Spread | undefined =>
    has(w1, t1) && has(w2, t2) ? cellRatio(r, w1, t1, w2, t2, c) : undefined;
  return [
    { name: `REST add_common at c=${c}: actorserve ≥ 3× Fastify`, measured: rel('rest-add', 'actorserve', 'rest-add', 'fastify'), target: 3, unit: 'x', detail: 'requests/s, actorserve ÷ Fastify + onnxruntime-node' },
    { name: `REST MLP (1 instance/request) at c=${c}: actorserve ≥ 6× Fastify`, measured: rel('rest-mlp', 'actorserve', 'rest-mlp', 'fastify'), target: 6, unit: 'x', detail: 'requests/s (= instances/s), actorserve ÷ Fastify' },
    { name: `gRPC unary add_common at c=${c}: actorserve ≥ 70 % of the echo ceiling`, measured: rel('grpc-add', 'actorserve', 'grpc-add', 'grpc-echo'), target: 0.7, unit: '%', detail: 'requests/s, actorserve MSService/Predict ÷ bare grpc-js echo' },
    { name: `gRPC streaming at c=${c}: PredictStream ≥ 2× unary Predict`, measured: rel('grpc-stream-add', 'actorserve', 'grpc-add', 'actorserve'), target: 2, unit: 'x', detail: 'requests/s, actorserve PredictStream ÷ actorserve MSService/Predict' },
  ];
}

/** Median server (or load generator) CPU µs per successful request of a cell, NaN when unknown. */
function cpuPerRequest(results: SuiteResults, w: string, t: string, c: number, of: 'serverCores' | 'clientCores' = 'serverCores'): number {
  return spread((results[w]?.[t]?.[c] ?? []).map((r) => ((r[of] ?? NaN) / r.requestsPerSecond) * 1e6)).median;
}

/** Facts from the run that explain each goal's figure (CPU per request, ceilings). */
function goalNotes(input: ReportInput, c: number): string[] {
  const r = input.results;
  const rps = (w: string, t: string): number => cellSpread(r, w, t, c, RPS).median;
  const us = (w: string, t: string, of: 'serverCores' | 'clientCores' = 'serverCores'): string => {
    const v = cpuPerRequest(r, w, t, c, of);
    return Number.isFinite(v) ? `${num(v)} µs` : 'unknown';
  };
  const gen = input.settings.restGenerator ?? 'js';
  const notes: string[] = [];
  if (r['rest-add']?.['actorserve'] && r['rest-add']?.['fastify']) {
    notes.push(
      `REST add_common, c=${c}: server CPU per request — actorserve ${us('rest-add', 'actorserve')}, Fastify + onnxruntime-node ${us('rest-add', 'fastify')}` +
        (r['rest-add']?.['uws'] ? `, bare uWS responder ${us('rest-add', 'uws')} (${num(rps('rest-add', 'uws'))} req/s)` : '') +
        '. The model work of `add` is negligible, so this goal measures per-request overhead: it can only be met if actorserve spends about a third of the CPU Fastify spends per request. ' +
        `The load generator (${gen}) spent ${us('rest-add', 'actorserve', 'clientCores')} per request against actorserve` +
        (r['rest-add']?.['uws'] ? ` and ${us('rest-add', 'uws', 'clientCores')} against the bare uWS responder` : '') +
        ': on a machine with few cores that is CPU the servers do not get.',
    );
    const ceiling = r['rest-add']?.['uws'] ? cellRatio(r, 'rest-add', 'uws', 'rest-add', 'fastify', c) : undefined;
    if (ceiling && ceiling.median < 3) {
      notes.push(
        `In this run the bare uWS responder itself — no engine, no JSON, a constant reply — reached only ${ceiling.median.toFixed(2)}× Fastify ` +
          `(${ceiling.min.toFixed(2)}×–${ceiling.max.toFixed(2)}×): the load generator shares the machine's cores, so a 3× server cannot be measured here.`,
      );
    }
  }
  if (r['rest-mlp']?.['actorserve'] && r['rest-mlp']?.['fastify']) {
    const rows = input.ort?.rows.filter((x) => x.model === 'mlp') ?? [];
    const b1 = rows.find((x) => x.batch === 1);
    const bN = rows.find((x) => x.batch > 1);
    const ceil = (x: typeof b1): number => spread(x?.cells.map((cc) => cc.instancesPerSecond) ?? []).median;
    notes.push(
      `REST MLP, c=${c}: actorserve ${num(rps('rest-mlp', 'actorserve'))} req/s, Fastify ${num(rps('rest-mlp', 'fastify'))} req/s; server CPU per request actorserve ${us('rest-mlp', 'actorserve')}, Fastify ${us('rest-mlp', 'fastify')}.` +
        (b1 && bN
          ? ` The raw compute loop reaches ${num(ceil(b1))} instances/s at batch 1 and ${num(ceil(bN))} at batch ${bN.batch}, so batching alone allows ~${(ceil(bN) / ceil(b1)).toFixed(1)}× over an unbatched server; what else each request costs (JSON of 1024 floats in and out, on one core shared with the load generator) decides how much of that shows.`
          : ''),
    );
  }
  if (r['grpc-add']?.['actorserve'] && r['grpc-add']?.['grpc-echo']) {
    notes.push(`gRPC unary, c=${c}: server CPU per call — actorserve ${us('grpc-add', 'actorserve')}, bare grpc-js echo ${us('grpc-add', 'grpc-echo')}; both are dominated by grpc-js's per-call cost.`);
  }
  if (r['grpc-kserve-add']?.['actorserve'] && r['grpc-add']?.['actorserve']) {
    notes.push(
      `gRPC KServe v2, c=${c}: ModelInfer ${num(rps('grpc-kserve-add', 'actorserve'))} req/s vs MSService/Predict ${num(rps('grpc-add', 'actorserve'))} req/s; server CPU per call ${us('grpc-kserve-add', 'actorserve')} vs ${us('grpc-add', 'actorserve')} (same servable and values; v2 adds the model-name resolution, batch split/stack and raw tensor layout).`,
    );
  }
  if (r['grpc-stream-add']?.['actorserve'] && r['grpc-add']?.['actorserve']) {
    notes.push(`gRPC streaming, c=${c}: server CPU per request — PredictStream ${us('grpc-stream-add', 'actorserve')} vs unary Predict ${us('grpc-add', 'actorserve')}: a stream saves grpc-js's per-call work.`);
  }
  return notes;
}

function fmtGoal(s: Spread, unit: 'x' | '%'): string {
  const f = (v: number): string => (unit === '%' ? `${Math.round(v * 100)} %` : `${v.toFixed(2)}×`);
  return s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

function workloadSection(input: ReportInput, w: Workload, plotRel: string): string {
  const { results, concurrency } = input;
  const rows: string[][] = [];
  for (const c of concurrency) {
    for (const t of w.targets) {
      const cells = results[w.id]?.[t]?.[c] ?? [];
      if (cells.length === 0) continue;
      const p = (f: (r: CellResult) => number): string => num(spread(cells.map(f)).median);
      const cores = spread(cells.map((r) => r.serverCores ?? NaN)).median;
      const usPerReq = spread(cells.map((r) => (r.serverCores ?? NaN) / r.requestsPerSecond * 1e6)).median;
      const client = spread(cells.map((r) => r.clientCores ?? NaN)).median;
      const clientPerReq = spread(cells.map((r) => ((r.clientCores ?? NaN) / r.requestsPerSecond) * 1e6)).median;
      const base = t === w.baseline ? '1.00×' : (() => {
        const q = cellRatio(results, w.id, t, w.id, w.baseline, c);
        if (!Number.isFinite(q.median)) return '–';
        return q.min === q.max ? `${q.median.toFixed(2)}×` : `${q.median.toFixed(2)}× (${q.min.toFixed(2)}–${q.max.toFixed(2)})`;
      })();
      const errors = cells.reduce((n, r) => n + r.errors, 0);
      const kinds = [...new Set(cells.flatMap((r) => Object.keys(r.errorsByKind)))];
      rows.push([
        String(c),
        TARGET_NAMES[t],
        withRange(spread(cells.map(RPS))),
        num(spread(cells.map(IPS)).median),
        p((r) => r.latencyMs.p50),
        p((r) => r.latencyMs.p90),
        p((r) => r.latencyMs.p99),
        p((r) => r.latencyMs.max),
        errors ? `${errors} (${kinds.join(', ')})` : '0',
        Number.isFinite(cores) ? `${cores.toFixed(2)} / ${num(usPerReq)} µs` : '–',
        Number.isFinite(client) ? `${client.toFixed(2)} / ${num(clientPerReq)} µs` : '–',
        base,
      ]);
    }
  }
  const generator = w.protocol === 'rest' ? (input.settings.restGenerator ?? 'js') : 'js';
  const out = [`## ${w.title}`, '', `${w.what}. Baseline for the ratio: ${TARGET_NAMES[w.baseline]}. Load generator: ${generator === 'wrk' ? 'wrk' : 'the JS generator'}.`, ''];
  out.push(
    table(
      ['c', 'target', 'req/s median (min–max)', 'inst/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', 'server CPU: cores / per req', 'load gen. CPU: cores / per req', `vs ${w.baseline}`],
      rows,
      ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  );
  out.push('', `![${w.title}: throughput](${plotRel}/${w.id}-throughput.svg) ![${w.title}: latency](${plotRel}/${w.id}-latency.svg)`, '');
  return out.join('\n');
}

function plots(input: ReportInput, w: Workload): Record<string, string> {
  const { results, concurrency } = input;
  const xTicks = concurrency.map(String);
  const throughput: Series[] = w.targets.map((t) => ({
    name: TARGET_SHORT[t],
    color: TARGET_COLORS[t],
    points: concurrency.map((c) => {
      const s = cellSpread(results, w.id, t, c, RPS);
      return Number.isFinite(s.median) ? { y: s.median, lo: s.min, hi: s.max } : undefined;
    }),
  }));
  const latency: Series[] = w.targets.flatMap((t) =>
    (['p50', 'p99'] as const).map((q) => ({
      name: `${TARGET_SHORT[t]} ${q}`,
      color: TARGET_COLORS[t],
      dashed: q === 'p99',
      points: concurrency.map((c) => {
        const s = cellSpread(results, w.id, t, c, (r) => r.latencyMs[q]);
        return Number.isFinite(s.median) ? { y: s.median, lo: s.min, hi: s.max } : undefined;
      }),
    })),
  );
  return {
    [`${w.id}-throughput.svg`]: lineChart({
      title: `${w.title}: throughput`,
      subtitle: 'median of the repeats, bars = min–max',
      xLabel: 'concurrency (requests in flight)',
      xTicks,
      yLabel: 'requests/s',
      series: throughput,
    }),
    [`${w.id}-latency.svg`]: lineChart({
      title: `${w.title}: latency`,
      subtitle: 'p50 solid, p99 dashed; median of the repeats, bars = min–max',
      xLabel: 'concurrency (requests in flight)',
      xTicks,
      yLabel: 'latency, ms',
      logY: true,
      series: latency,
    }),
  };
}

/** The soak is a run of its own (perf/soak/); the report links its report, which sits beside perf/report.md. */
const SOAK_LINK =
  'Stability over time is measured separately: a 10-minute saturation soak of `actorserve serve` on REST and gRPC with good, bad and cancelled requests ' +
  '(`npm run perf:soak`, perf/soak/): memory slope, outcomes by kind and p99 per window in [soak-report.md](soak-report.md).';

/** The Open Inference Protocol comparisons are a run of their own (perf/kserve.ts); the report links theirs, beside perf/report.md. */
const KSERVE_LINK =
  'KServe v2 (the Open Inference Protocol) against the MindSpore routes on the same server — v2 REST JSON and binary vs MindSpore REST, v2 gRPC ModelInfer vs MSService/Predict, ' +
  'for add, the MLP and resnet at c=1 and c=64, with the MLP\'s per-request codec and compute costs — is measured separately (`node dist/perf/kserve.js --transport rest|grpc`): ' +
  '[kserve-rest-report.md](kserve-rest-report.md), [kserve-grpc-report.md](kserve-grpc-report.md).';

/** Distributed servables are measured by a run of their own (perf/distributed-latency.ts: agent rank processes); the report links theirs, beside perf/report.md. */
const DISTRIBUTED_LINK =
  'Distributed servables (MindSpore\'s matmul over 8 agent rank processes on this machine against the same model served locally: requests/s, p50/p99 and CPU per request at c=1 and c=64, ' +
  'the added latency, and the limit the measured costs set on this machine) are measured separately (`node dist/perf/distributed-latency.js`): ' +
  '[distributed-report.md](distributed-report.md).';

/** Token generation (tiny_lm) is measured by a run of its own (perf/tiny-lm.ts); the report links its report, beside perf/report.md. */
const GENERATION_LINK =
  'Token generation — the bundled tiny_lm (prefill + decode, state in the device actor) streamed through the engine at 1, 8 and 32 concurrent generations against a plain ' +
  'onnxruntime-node loop and the model\'s own lockstep-batch ceiling: tokens/s, time to first token and per-token p50/p99 — is measured separately (`node dist/perf/tiny-lm.js`): ' +
  '[tiny-lm-report.md](tiny-lm-report.md).';

/** Writes the report and the plots; returns the paths written and the goals table. */
export async function writeReport(input: ReportInput): Promise<{ files: string[]; goals: string }> {
  const { machine: m, settings: s } = input;
  const goalC = Math.max(...input.concurrency);
  const plotRel = path.relative(path.dirname(input.reportPath), input.plotsDir).split(path.sep).join('/') || '.';
  const busy = m.loadStart[0]! > m.cores * 0.5;
  const out: string[] = [];
  out.push('# actorserve performance report', '');
  out.push(
    `Generated by \`npm run perf\` (\`node dist/perf/suite/run.js\`) on ${input.startedAt.toISOString().replace(/\.\d+Z$/, 'Z')} in ${Math.round(input.seconds)} s. ` +
      'Every number below comes from that one run on the machine described here; rerun the suite to refresh it.',
    '',
  );
  out.push(SOAK_LINK, '', KSERVE_LINK, '', DISTRIBUTED_LINK, '', GENERATION_LINK, '');
  out.push('## Machine', '');
  out.push(
    table(
      ['', ''],
      [
        ['CPU', `${m.cpu}, ${m.cores} cores`],
        ['memory', `${m.memoryGiB.toFixed(1)} GiB`],
        ['OS', m.os],
        ['Node', m.node],
        ...Object.entries(m.versions).map(([k, v]) => [k, v]),
        ['load average (1, 5, 15 min)', `${m.loadStart.map((v) => v.toFixed(2)).join(', ')} before the run; ${m.loadEnd.map((v) => v.toFixed(2)).join(', ')} after it`],
      ],
    ),
    '',
  );
  if (busy) {
    out.push(
      `> **Shared machine.** The 1-minute load average was ${m.loadStart[0]!.toFixed(2)} on ${m.cores} cores before the suite started: ` +
        'other work was running, so absolute numbers are low and noisy. Cells are interleaved across targets (and repeated) so the ' +
        'ratios are fairer than the absolute figures; the min–max ranges show how much the noise moved them.',
      '',
    );
  }
  out.push('## Settings', '');
  out.push(
    [
      `- Each cell: ${s.warmupMs} ms warm-up, then ${s.cellMs / 1000} s measured; every cell repeated ${s.repeats}× (cells of all targets interleaved, order rotated per repeat). Tables show the median, with min–max over the repeats where it matters.`,
      (s.restGenerator === 'wrk'
        ? `- REST load: wrk (cli/bench-wrk.ts, as \`actorserve bench --generator wrk\`), its own process, -t ${s.workers} (or the largest divisor of c below it) -c c, one keep-alive HTTP/1.1 connection per request in flight, the body in a generated Lua script; the warm-up is a separate wrk run. wrk counts a reply with status ≥ 400 or a socket error as failed and does not read bodies; its latencies are of every reply.\n` +
          `- gRPC load: \`actorserve bench\`'s JS generator (cli/bench-load.ts), closed loops (each sends, waits for the reply, sends again) on ${s.workers} worker thread(s) in the suite's process, one HTTP/2 session per thread (node:http2, cli/bench-grpc.ts); messages encoded and framed once. c = requests in flight.`
        : `- Load: \`actorserve bench\`'s JS generator (cli/bench-load.ts), closed loops (each sends, waits for the reply, sends again) on ${s.workers} worker thread(s) in the suite's process; REST over one keep-alive HTTP/1.1 connection per loop (a lean node:net client, cli/bench-http.ts), gRPC over one HTTP/2 session per thread (node:http2, cli/bench-grpc.ts); bodies encoded and framed once. c = requests in flight. wrk was not used (not on PATH, or --generator js): the generator takes about a core itself and caps the fastest targets.`),
      `- actorserve: its own process (perf/suite/targets/actorserve.ts: \`ServingServer\`, \`startServables\`, \`startRestfulServer\` as \`actorserve serve\` does, plus \`startGrpcServer\`), device actors ${s.deviceIds.split(',').length} per servable (device ids ${s.deviceIds}), ${s.intraOpThreads} intra-op thread(s) each, default batching (max batch 16 for add, ${s.mlpMaxBatch} for the MLP, 8 for resnet; no queue delay).`,
      `- Fastify + onnxruntime-node: its own process, the same three models, \`session.run\` on the main thread per request (no batching across requests), same session options (${s.intraOpThreads} intra-op thread(s), sequential, all graph optimisations), Fastify's JSON parser and serializer, sharp for the CNN's preprocessing.`,
      '- bare uWS responder: reads each body and answers a constant `add` reply. bare grpc-js echo: the same protos, answers each instance with its x1 as y at once.',
      ...(s.shortened
        ? [`- **${s.shortened.count} cells were shortened** (down to ${(s.shortened.minMs / 1000).toFixed(1)} s) to keep the run within its time budget: the machine was slower than planned.`]
        : []),
      '- Servables and inputs are generated deterministically into perf/out/ (git-ignored) by perf/suite/servables.ts.',
    ].join('\n'),
    '',
  );

  out.push('## Goals', '');
  const gs = goals(input, goalC);
  const goalsTable = table(
      ['goal', 'measured: median (range)', 'target', 'met?'],
      gs.map((g) => [
        g.name,
        g.measured && Number.isFinite(g.measured.median) ? fmtGoal(g.measured, g.unit) : 'not measured',
        g.unit === '%' ? `≥ ${Math.round(g.target * 100)} %` : `≥ ${g.target}×`,
        !g.measured || !Number.isFinite(g.measured.median) ? '–' : g.measured.median >= g.target ? (g.measured.min >= g.target ? '**yes**' : '**yes** (median; not every repeat)') : '**no**',
      ]),
      ['l', 'r', 'r', 'l'],
    );
  out.push(
    goalsTable,
    '',
    ...goalNotes(input, goalC).map((n) => `- ${n}`),
    '',
    'Ratios are taken repeat by repeat (repeat i of one cell ÷ repeat i of the other; within a workload the two cells ran back to back, so they saw the same background load), then the median and min–max of those ratios are shown. "yes (median; not every repeat)" means the median meets the goal but at least one repeat did not.',
    '',
  );

  const files: Record<string, string> = {};
  for (const w of input.workloads) {
    if (!input.results[w.id]) continue;
    out.push(workloadSection(input, w, plotRel));
    Object.assign(files, plots(input, w));
  }

  if (input.ort) {
    out.push('## Raw onnxruntime-node loop', '');
    out.push(
      `\`session.run\` back to back on one thread, no server and no encoding, ${s.intraOpThreads} intra-op thread(s): the compute ceiling per model. ` +
        'Batch 1 is what a server without batching can reach at best; the larger batch shows what batching can buy.',
      '',
    );
    out.push(
      table(
        ['model', 'batch', 'runs/s median (min–max)', 'instances/s', 'p50 ms per run', 'p99 ms per run'],
        input.ort.rows.map((r) => [
          r.model === 'mlp' ? 'MLP 4×1024' : r.model === 'resnet' ? 'ResNet-shaped CNN' : 'add',
          String(r.batch),
          withRange(spread(r.cells.map((c) => c.callsPerSecond))),
          num(spread(r.cells.map((c) => c.instancesPerSecond)).median),
          num(spread(r.cells.map((c) => c.p50Ms)).median),
          num(spread(r.cells.map((c) => c.p99Ms)).median),
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
  }

  out.push('## Reading the numbers', '');
  out.push(
    [
      '- req/s counts successful replies only; latency percentiles are of successful requests, measured by the client from send to the last byte of the reply.',
      '- Server and load generator share this machine, so each figure is for the pair; on few cores the load generator takes a share of the CPU (wrk a few µs per request, the JS generator several times more) and caps what the ceilings (uWS, grpc-js echo) can show.',
      '- "server CPU" is the CPU time the target process (all its threads) used during the cell, in cores (1.00 = one core busy), and divided by the requests served: the cost of one request on the server. A target at ~1 core with the load generator well below its ceiling is server-bound; a load generator near 1 core per load thread is the limit.',
      '- "load gen. CPU" is the CPU time the load generator used in the cell: the wrk process for REST cells driven by wrk (read from /proc/self/stat by its Lua `done` after its threads ended), the suite\'s own process (its load threads; the main thread only waits) for the JS generator; per req = divided by the successful requests, as the server\'s. On a shared machine this is CPU the servers do not get.',
      '- Run a cell yourself against any server: `actorserve bench 127.0.0.1:1500 --servable add --method add_common --concurrency 1,8,64 --duration 10s` (see `actorserve bench --help`).',
    ].join('\n'),
    '',
  );

  const written: string[] = [];
  for (const [name, svg] of Object.entries(files)) {
    const f = path.join(input.plotsDir, name);
    await writeFile(f, svg);
    written.push(f);
  }
  await writeFile(input.reportPath, out.join('\n'));
  written.push(input.reportPath);
  return { files: written, goals: goalsTable };
}
