/**
 * `npm run perf`: actorserve against its baselines, the same load on each, in one run on this
 * machine, written to perf/report.md with SVG plots under perf/plots/.
 *
 *   npm run build && node dist/perf/suite/run.js [--cell-seconds 3] [--repeats 3]
 *       [--warmup-ms 500] [--concurrency 1,8,64] [--intra-op-threads 1] [--device-ids 0]
 *       [--workers N] [--generator wrk|js] [--only rest-add,grpc-add,ort] [--report perf/report.md] [--quick]
 *       [--budget-min 12] [--from-results perf/out/results.json]
 *
 * The load cells stay within --budget-min minutes: when a slow, busy machine would overrun
 * it, the remaining cells are shortened (to 1 s at least) and the report says so. With the
 * defaults (99 cells of 0.5 + 3 s) the whole run takes about 7–9 minutes on 2 cores.
 * Every run also saves its raw results to perf/out/results.json; --from-results renders the
 * report (and plots) from such a file again without running anything.
 *
 * Targets, each in its own child process, all started before the first cell and left idle
 * while another is measured (cells are interleaved, so background noise spreads over all):
 *   actorserve    the engine with REST (uWebSockets.js) and gRPC on the suite's servables
 *   fastify       Fastify + onnxruntime-node on the main thread (the plain way)
 *   uws           a bare uWebSockets.js responder (HTTP ceiling)
 *   grpc-echo     a bare grpc-js server with the same protos (gRPC ceiling)
 * plus the raw onnxruntime-node compute loop (no server) as a job of its own.
 *
 * The load is `actorserve bench`'s: REST from wrk (cli/bench-wrk.ts) when it is on PATH (else,
 * and with --generator js, from the JS generator, saying so), gRPC from the JS generator
 * (cli/bench-load.ts: closed loops on worker threads, keep-alive connections, pre-encoded
 * bodies). Each cell records the CPU time of the target and of the load generator.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildPayload } from '../../cli/bench-input.js';
import { type LevelResult, type Plan, defaultWorkers, parseTarget, preflight, runLevel } from '../../cli/bench-load.js';
import { runWrkLevel } from '../../cli/bench-wrk-level.js';
import { findExecutable } from '../../cli/find-executable.js';
import { findProjectRoot } from '../../servables/generate-models.js';
import { type Running, runJob, startTarget } from './child.js';
import { type CellResult, type OrtLoopResult, type ReportInput, type SuiteResults, type Workload, type TargetId, writeReport } from './report.js';
import { MLP_MAX_BATCH, prepareSuite } from './servables.js';

export const WORKLOADS: readonly Workload[] = [
  {
    id: 'rest-add',
    title: 'REST add_common',
    what: 'bundled `add` servable, one [2, 2] float32 instance per request (the README body)',
    protocol: 'rest',
    servable: 'add',
    method: 'add_common',
    input: 'add',
    targets: ['actorserve', 'fastify', 'uws'],
    baseline: 'fastify',
  },
  {
    id: 'rest-mlp',
    title: 'REST MLP 4×1024',
    what: `4 × 1024 ReLU MLP (mlpModel seed 1), one [1024] float32 instance per request; actorserve batches across requests up to ${MLP_MAX_BATCH}`,
    protocol: 'rest',
    servable: 'mlp',
    method: 'predict',
    input: 'mlp',
    targets: ['actorserve', 'fastify'],
    baseline: 'fastify',
  },
  {
    id: 'rest-cnn',
    title: 'REST ResNet-shaped CNN',
    what: 'bundled `resnet` classify_top1: a 320×240 JPEG (b64) per request, decoded/resized/normalised with sharp, CNN, top-1 label',
    protocol: 'rest',
    servable: 'resnet',
    method: 'classify_top1',
    input: 'resnet',
    targets: ['actorserve', 'fastify'],
    baseline: 'fastify',
  },
  {
    id: 'grpc-add',
    title: 'gRPC MSService/Predict add_common',
    what: 'unary MindSpore-compatible Predict, one [2, 2] float32 instance per request, one HTTP/2 connection per load thread',
    protocol: 'grpc',
    servable: 'add',
    method: 'add_common',
    input: 'add',
    targets: ['actorserve', 'grpc-echo'],
    baseline: 'grpc-echo',
  },
  {
    id: 'grpc-stream-add',
    title: 'gRPC PredictStream add_common',
    what: 'pipelined actorserve.v1 PredictStream: one stream per load thread carrying every request in flight',
    protocol: 'grpc-stream',
    servable: 'add',
    method: 'add_common',
    input: 'add',
    targets: ['actorserve', 'grpc-echo'],
    baseline: 'grpc-echo',
  },
  {
    id: 'grpc-kserve-add',
    title: 'gRPC KServe v2 ModelInfer add_common',
    what: 'unary Open Inference Protocol GRPCInferenceService/ModelInfer to the model `add.add_common`, one [1, 2, 2] float32 batch per request in raw_input_contents, replies in raw_output_contents; compared with MSService/Predict in the notes',
    protocol: 'kserve',
    servable: 'add',
    method: 'add_common',
    input: 'add',
    targets: ['actorserve'],
    baseline: 'actorserve',
  },
];

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function intList(s: string): number[] {
  const v = s.split(',').map((x) => Number(x.trim()));
  if (v.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`expected integers >= 1, got '${s}'`);
  return v;
}

function versionOf(root: string, pkg: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The CPU the target and the load generator used in a cell, in cores (1 = one core busy). */
function cores(level: LevelResult): { serverCores?: number; clientCores?: number } {
  const per = (cpu: number | undefined): number | undefined => (cpu !== undefined && level.seconds > 0 ? cpu / level.seconds : undefined);
  const serverCores = per(level.serverCpuSeconds);
  const clientCores = per(level.generatorCpuSeconds);
  return { ...(serverCores !== undefined ? { serverCores } : {}), ...(clientCores !== undefined ? { clientCores } : {}) };
}

function loadavg(): [number, number, number] {
  const [a, b, c] = os.loadavg();
  return [a!, b!, c!];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'cell-seconds': { type: 'string', default: '3' },
      repeats: { type: 'string', default: '3' },
      'warmup-ms': { type: 'string', default: '500' },
      concurrency: { type: 'string', default: '1,8,64' },
      'intra-op-threads': { type: 'string', default: '1' },
      'device-ids': { type: 'string', default: '0' },
      workers: { type: 'string' },
      generator: { type: 'string' },
      only: { type: 'string' },
      'budget-min': { type: 'string', default: '12' },
      'from-results': { type: 'string' },
      report: { type: 'string' },
      quick: { type: 'boolean', default: false },
    },
  });
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = findProjectRoot(here);
  const quick = values.quick;
  const cellMs = (quick ? 1 : Number(values['cell-seconds'])) * 1000;
  const repeats = quick ? 1 : Number(values.repeats);
  const warmupMs = quick ? 200 : Number(values['warmup-ms']);
  const concurrency = intList(values.concurrency);
  const intra = Number(values['intra-op-threads']);
  const deviceIds = values['device-ids'];
  const workers = values.workers ? Number(values.workers) : defaultWorkers();
  const only = values.only ? new Set(values.only.split(',').map((s) => s.trim())) : undefined;
  const workloads = WORKLOADS.filter((w) => !only || only.has(w.id));
  const runOrt = !only || only.has('ort');
  const reportPath = path.resolve(root, values.report ?? path.join('perf', 'report.md'));
  const plotsDir = path.join(path.dirname(reportPath), 'plots');

  if (values['from-results']) {
    const data = JSON.parse(await readFile(values['from-results'], 'utf8')) as Omit<ReportInput, 'reportPath' | 'plotsDir' | 'startedAt'> & { startedAt: string };
    await mkdir(plotsDir, { recursive: true });
    const written = await writeReport({ ...data, startedAt: new Date(data.startedAt), reportPath, plotsDir });
    for (const f of written.files) log(`wrote ${path.relative(root, f)}`);
    process.stdout.write(`\n${written.goals}\n`);
    return;
  }
  const startedAt = new Date();
  const loadStart = loadavg();
  log(`perf suite: load average ${loadStart.map((v) => v.toFixed(2)).join(' ')} on ${os.availableParallelism()} cores`);
  if (values.generator !== undefined && values.generator !== 'wrk' && values.generator !== 'js') throw new Error(`--generator takes wrk or js, got '${values.generator}'`);
  const wrk = values.generator === 'js' ? undefined : findExecutable('wrk');
  if (values.generator === 'wrk' && !wrk) throw new Error('--generator wrk: wrk is not on PATH (Debian/Ubuntu: apt-get install wrk)');
  if (workloads.some((w) => w.protocol === 'rest')) {
    log(
      wrk
        ? `REST load: wrk (${wrk})`
        : values.generator === 'js'
          ? 'REST load: the JS generator (--generator js)'
          : 'REST load: wrk is not on PATH, so the JS generator drives REST; it uses about a core for itself and caps the fastest targets. Install wrk (Debian/Ubuntu: apt-get install wrk) and rerun for the numbers the goals need.',
    );
  }
  const restGenerator = wrk ? 'wrk' : 'js';
  log('preparing servables and inputs under perf/out/ ...');
  const files = await prepareSuite(path.join(root, 'perf', 'out'), root);
  const inputs = {
    add: await readFile(files.inputs.add),
    mlp: await readFile(files.inputs.mlp),
    resnet: await readFile(files.inputs.resnet),
  };

  const needed = new Set<TargetId>(workloads.flatMap((w) => w.targets));
  const servables = [...new Set(workloads.filter((w) => w.targets.includes('actorserve')).map((w) => w.servable))];
  const script = (name: string): string => path.join(here, 'targets', `${name}.js`);
  const modelArgs = ['--add', files.models.add, '--mlp', files.models.mlp, '--resnet', files.models.resnet, '--intra-op-threads', String(intra)];
  const running = new Map<TargetId, Running>();
  const t0 = performance.now();
  const results: SuiteResults = {};
  const shortened = { count: 0, minMs: Infinity };
  let ort: OrtLoopResult | undefined;
  try {
    for (const id of needed) {
      log(`starting ${id} ...`);
      const r =
        id === 'actorserve'
          ? await startTarget(id, script('actorserve'), ['--servable-dir', files.servableDir, '--servables', servables.join(','), '--device-ids', deviceIds, '--intra-op-threads', String(intra)], root)
          : id === 'fastify'
            ? await startTarget(id, script('fastify-ort'), modelArgs, root)
            : id === 'uws'
              ? await startTarget(id, script('uws-ceiling'), [], root)
              : await startTarget(id, script('grpc-echo'), [], root);
      running.set(id, r);
    }

    // One plan per (workload, target); a preflight request each, so a broken target fails now.
    const plans = new Map<string, Plan>();
    for (const w of workloads) {
      for (const id of w.targets) {
        const info = running.get(id)!.info;
        const address = w.protocol === 'rest' ? info['rest'] : info['grpc'];
        if (!address) throw new Error(`${id} has no ${w.protocol} address`);
        const payload = buildPayload(w.protocol, inputs[w.input], { servable: w.servable, method: w.method, version: 0 }, { where: `${w.input} input` });
        const plan: Plan = { protocol: w.protocol, ...parseTarget(address, w.protocol), payload, timeoutMs: 20_000, workers };
        await preflight(plan, 60_000);
        plans.set(`${w.id}/${id}`, plan);
      }
    }

    const total = workloads.reduce((n, w) => n + w.targets.length, 0) * concurrency.length * repeats;
    log(`${total} cells of ${warmupMs} ms warm-up + ${cellMs} ms, ${workers} load thread(s): about ${Math.ceil((total * (cellMs + warmupMs + 400)) / 60_000)} min`);
    let done = 0;
    const budgetMs = Number(values['budget-min']) * 60_000;
    const tCells = performance.now();
    let spentInCells = 0;
    for (const w of workloads) {
      const byTarget: Record<string, Record<number, CellResult[]>> = {};
      for (const c of concurrency) {
        for (let rep = 0; rep < repeats; rep++) {
          // rotate the order so no target always runs right after another's load
          const order = w.targets.map((_, i) => w.targets[(i + rep) % w.targets.length]!);
          for (const id of order) {
            // Keep to the budget: the overhead per cell so far (worker start, draining the last
            // replies) is known; shorten the remaining cells when they would not fit.
            const elapsed = performance.now() - tCells;
            const overhead = done > 0 ? Math.max(0, (elapsed - spentInCells) / done) : 500;
            const fit = (budgetMs - elapsed) / (total - done) - overhead - warmupMs;
            const durationMs = Math.round(Math.max(1000, Math.min(cellMs, fit)));
            if (durationMs < cellMs) {
              shortened.count++;
              shortened.minMs = Math.min(shortened.minMs, durationMs);
            }
            spentInCells += durationMs + warmupMs;
            // the level records the CPU of the target and of the load generator over its measurement
            const plan = plans.get(`${w.id}/${id}`)!;
            const cell = { concurrency: c, durationMs, warmupMs, serverPid: running.get(id)!.process.pid! };
            const level = wrk && w.protocol === 'rest' ? await runWrkLevel(plan, wrk, cell) : await runLevel(plan, cell);
            const r = { ...level, ...cores(level) };
            ((byTarget[id] ??= {})[c] ??= []).push(r);
            done++;
            const errs = r.errors ? `, ${r.errors} errors (${Object.keys(r.errorsByKind).join(', ')})` : '';
            const us = (v: number | undefined): string => (v !== undefined ? `${v.toFixed(1)} µs/req` : '?');
            const cpu = r.serverCores !== undefined ? `, CPU: server ${r.serverCores.toFixed(2)} cores ${us(r.serverCpuPerRequestUs)}, ${r.generator} ${r.clientCores?.toFixed(2)} cores ${us(r.generatorCpuPerRequestUs)}` : '';
            log(
              `[${done}/${total} ${((performance.now() - t0) / 1000).toFixed(0)} s] ${w.id} c=${c} ${id} #${rep + 1}: ` +
                `${r.requestsPerSecond.toFixed(0)} req/s, p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms${cpu}${errs}`,
            );
          }
        }
      }
      results[w.id] = byTarget;
    }
  } finally {
    await Promise.all([...running.values()].map((r) => r.stop()));
  }

  if (runOrt) {
    log('raw onnxruntime-node loop ...');
    ort = await runJob<OrtLoopResult>('ort-loop', script('ort-loop'), [...modelArgs, '--duration-ms', String(quick ? 500 : 2000), '--repeats', String(repeats)], root);
  }

  const loadEnd = loadavg();
  await mkdir(plotsDir, { recursive: true });
  const data: Omit<ReportInput, 'reportPath' | 'plotsDir'> = {
    workloads,
    results,
    ort,
    concurrency,
    settings: { cellMs, repeats, warmupMs, workers, intraOpThreads: intra, deviceIds, mlpMaxBatch: MLP_MAX_BATCH, shortened: shortened.count ? shortened : undefined, restGenerator },
    machine: {
      cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
      cores: os.availableParallelism(),
      memoryGiB: os.totalmem() / 2 ** 30,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      versions: {
        'onnxruntime-node': versionOf(root, 'onnxruntime-node'),
        '@trufflesuite/uws-js-unofficial': versionOf(root, '@trufflesuite/uws-js-unofficial'),
        '@grpc/grpc-js': versionOf(root, '@grpc/grpc-js'),
        fastify: versionOf(root, 'fastify'),
      },
      loadStart,
      loadEnd,
    },
    startedAt,
    seconds: (performance.now() - t0) / 1000,
  };
  // the raw results, so the report can be rendered again without a run (--from-results)
  await writeFile(path.join(root, 'perf', 'out', 'results.json'), JSON.stringify(data));
  const written = await writeReport({ ...data, reportPath, plotsDir });
  for (const f of written.files) log(`wrote ${path.relative(root, f)}`);
  process.stdout.write(`\n${written.goals}\n\nFull report: ${path.relative(process.cwd(), reportPath)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`perf suite failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
