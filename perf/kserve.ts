/**
 * KServe v2 over REST against MindSpore's REST route, on the same actorserve server and the
 * perf suite's servables: `add` (one [2, 2] float32 instance pair per request) and the
 * 4 × 1024 MLP (one [1024] float32 instance), each request one instance, at each concurrency:
 *
 *   mindspore   POST /model/<servable>:<method>, {"instances": ...} JSON (the baseline)
 *   v2-json     POST /v2/models/<servable>/infer, JSON tensors in and out
 *   v2-binary   the same with the binary tensor data extension both ways (inputs as
 *               binary_data_size chunks, binary_data_output: true)
 *
 * and the bundled `resnet` (one JPEG per request: BYTES in v2; v2 JSON cannot carry it, since
 * JSON BYTES elements are strings, so resnet has no v2-json cell).
 *
 *   npm run build && node dist/perf/kserve-rest.js [--cell-seconds 3] [--warmup-ms 500]
 *       [--repeats 1] [--concurrency 1,64] [--workers N] [--report perf/out/kserve-rest.md]
 *
 * The server runs in its own process (perf/suite/targets/actorserve.ts); the load is `actorserve
 * bench`'s generator (closed loops on worker threads, keep-alive, pre-encoded bodies). Cells are
 * interleaved (the variant order rotates per repeat). Prints a Markdown table (req/s, p50,
 * p99, ratio to the mindspore cell of the same workload and concurrency) and writes it to the
 * report file. Issue 15 asks v2-binary ≥ 2× v2-json for the MLP.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Payload, buildPayload } from '../cli/bench-input.js';
import { type LevelResult, type Plan, defaultWorkers, parseTarget, preflight, runLevel } from '../cli/bench-load.js';
import { findProjectRoot } from '../servables/generate-models.js';
import { startTarget } from './suite/child.js';
import { MLP_WIDTH, prepareSuite, sampleJpeg } from './suite/servables.js';

type Variant = 'mindspore' | 'v2-json' | 'v2-binary';
const VARIANTS: readonly Variant[] = ['mindspore', 'v2-json', 'v2-binary'];

interface Workload {
  readonly id: string;
  readonly servable: string;
  readonly method: string;
  /** name → shape and values of one request's inputs (one instance): float32 numbers, or BYTES elements. */
  readonly inputs: Readonly<Record<string, { shape: number[]; values: number[] } | { shape: number[]; bytes: Buffer[] }>>;
}

/** The binary extension's chunk of one input: float32 little-endian, or BYTES as 4-byte LE length + bytes. */
function chunkOf(t: Workload['inputs'][string]): Buffer {
  if ('values' in t) return Buffer.from(Float32Array.from(t.values).buffer);
  return Buffer.concat(
    t.bytes.flatMap((b) => {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      return [len, b];
    }),
  );
}

function v2Json(w: Workload): Payload {
  const inputs = Object.entries(w.inputs).map(([name, t]) => {
    if (!('values' in t)) throw new Error(`${w.id}: v2 JSON carries no binary BYTES input`);
    return { name, datatype: 'FP32', shape: t.shape, data: t.values };
  });
  return { bytes: Buffer.from(JSON.stringify({ inputs })), headers: { 'content-type': 'application/json' }, path: `/v2/models/${w.servable}/infer`, instances: 1 };
}

function v2Binary(w: Workload): Payload {
  const chunks = Object.values(w.inputs).map(chunkOf);
  const inputs = Object.entries(w.inputs).map(([name, t], i) => ({ name, datatype: 'values' in t ? 'FP32' : 'BYTES', shape: t.shape, parameters: { binary_data_size: chunks[i]!.length } }));
  const header = Buffer.from(JSON.stringify({ inputs, parameters: { binary_data_output: true } }));
  return {
    bytes: Buffer.concat([header, ...chunks]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    path: `/v2/models/${w.servable}/infer`,
    instances: 1,
  };
}

interface Row {
  readonly workload: string;
  readonly concurrency: number;
  readonly variant: Variant;
  readonly results: LevelResult[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function table(rows: readonly Row[]): string {
  const lines = ['| workload | c | variant | req/s | p50 ms | p99 ms | vs mindspore | errors |', '| --- | --: | --- | --: | --: | --: | --: | --: |'];
  for (const r of rows) {
    const rps = median(r.results.map((x) => x.requestsPerSecond));
    const base = rows.find((b) => b.workload === r.workload && b.concurrency === r.concurrency && b.variant === 'mindspore');
    const ratio = base ? rps / median(base.results.map((x) => x.requestsPerSecond)) : NaN;
    const errors = r.results.reduce((n, x) => n + x.errors, 0);
    lines.push(
      `| ${r.workload} | ${r.concurrency} | ${r.variant} | ${rps.toFixed(0)} | ${median(r.results.map((x) => x.latencyMs.p50)).toFixed(2)} | ` +
        `${median(r.results.map((x) => x.latencyMs.p99)).toFixed(2)} | ${ratio.toFixed(2)}× | ${errors} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'cell-seconds': { type: 'string', default: '3' },
      'warmup-ms': { type: 'string', default: '500' },
      repeats: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '1,64' },
      workers: { type: 'string' },
      report: { type: 'string' },
    },
  });
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = findProjectRoot(here);
  const cellMs = Number(values['cell-seconds']) * 1000;
  const warmupMs = Number(values['warmup-ms']);
  const repeats = Number(values.repeats);
  const concurrency = values.concurrency.split(',').map(Number);
  const workers = values.workers ? Number(values.workers) : defaultWorkers();
  const reportPath = path.resolve(root, values.report ?? path.join('perf', 'out', 'kserve-rest.md'));

  const files = await prepareSuite(path.join(root, 'perf', 'out'), root);
  const mlpX = (JSON.parse(await readFile(files.inputs.mlp, 'utf8')) as { instances: { x: number[] } }).instances.x;
  const workloads: Workload[] = [
    { id: 'add', servable: 'add', method: 'add_common', inputs: { x1: { shape: [1, 2, 2], values: [1, 1, 1, 1] }, x2: { shape: [1, 2, 2], values: [1, 1, 1, 1] } } },
    { id: `mlp 4×${MLP_WIDTH}`, servable: 'mlp', method: 'predict', inputs: { x: { shape: [1, MLP_WIDTH], values: mlpX } } },
    { id: 'resnet', servable: 'resnet', method: 'classify_top1', inputs: { image: { shape: [1], bytes: [await sampleJpeg()] } } },
  ];
  const mindsporeBodies: Record<string, Buffer> = { add: await readFile(files.inputs.add), mlp: await readFile(files.inputs.mlp), resnet: await readFile(files.inputs.resnet) };
  const variantsOf = (w: Workload): readonly Variant[] => (Object.values(w.inputs).every((t) => 'values' in t) ? VARIANTS : VARIANTS.filter((v) => v !== 'v2-json'));

  const load = os.loadavg();
  process.stderr.write(`kserve-rest: load average ${load.map((v) => v.toFixed(2)).join(' ')} on ${os.availableParallelism()} cores\n`);
  const server = await startTarget('actorserve', path.join(here, 'suite', 'targets', 'actorserve.js'), ['--servable-dir', files.servableDir, '--servables', 'add,mlp,resnet'], root);
  const rows: Row[] = [];
  try {
    const address = server.info['rest']!;
    const plans = new Map<string, Plan>();
    for (const w of workloads) {
      for (const v of variantsOf(w)) {
        const payload =
          v === 'mindspore'
            ? buildPayload('rest', mindsporeBodies[w.servable]!, { servable: w.servable, method: w.method, version: 0 }, { where: `${w.id} input` })
            : v === 'v2-json'
              ? v2Json(w)
              : v2Binary(w);
        const plan: Plan = { protocol: 'rest', ...parseTarget(address, 'rest'), payload, timeoutMs: 20_000, workers };
        await preflight(plan, 60_000);
        plans.set(`${w.id}/${v}`, plan);
      }
    }
    for (const w of workloads) {
      for (const c of concurrency) {
        const variants = variantsOf(w);
        const byVariant = new Map<Variant, LevelResult[]>(variants.map((v) => [v, []]));
        for (let rep = 0; rep < repeats; rep++) {
          for (let i = 0; i < variants.length; i++) {
            const v = variants[(i + rep) % variants.length]!;
            const r = await runLevel(plans.get(`${w.id}/${v}`)!, { concurrency: c, durationMs: cellMs, warmupMs });
            byVariant.get(v)!.push(r);
            process.stderr.write(`${w.id} c=${c} ${v} #${rep + 1}: ${r.requestsPerSecond.toFixed(0)} req/s, p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms${r.errors ? `, ${r.errors} errors` : ''}\n`);
          }
        }
        for (const v of variants) rows.push({ workload: w.id, concurrency: c, variant: v, results: byVariant.get(v)! });
      }
    }
  } finally {
    await server.stop();
  }
  const text =
    `# KServe v2 REST vs MindSpore REST (perf/kserve-rest.ts)\n\n` +
    `${new Date().toISOString()}, ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores, Node ${process.version}; ` +
    `load average at start ${load.map((v) => v.toFixed(2)).join(' ')}; ${repeats} repeat(s) of ${cellMs / 1000} s cells after ${warmupMs} ms warm-up, ` +
    `${workers} load thread(s); medians over repeats.\n\n${table(rows)}\n`;
  await mkdir(path.dirname(reportPath), { recursive: true });
  await writeFile(reportPath, text);
  process.stdout.write(`${text}\nwrote ${path.relative(process.cwd(), reportPath)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`kserve-rest benchmark failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
