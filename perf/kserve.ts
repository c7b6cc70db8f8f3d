/**
 * The Open Inference Protocol (KServe v2) against MindSpore's routes, on the same actorserve
 * server and the perf suite's servables: `add` (one [2, 2] float32 instance pair per request),
 * the 4 × 1024 MLP (one [1024] float32 instance) and the bundled `resnet` (one JPEG), each
 * request one instance, at each concurrency. One transport per run:
 *
 *   --transport rest
 *     mindspore   POST /model/<servable>:<method>, {"instances": ...} JSON (the baseline)
 *     v2-json     POST /v2/models/<servable>/infer, JSON tensors in and out
 *     v2-binary   the same with the binary tensor data extension both ways (inputs as
 *                 binary_data_size chunks, binary_data_output: true)
 *     (v2 JSON cannot carry resnet's JPEG, since JSON BYTES elements are strings: no v2-json cell)
 *     and, after the load cells, the MLP's per-request costs in CPU time: the v2 body decoded
 *     (JSON and binary) and the reply encoded, with the transport's own functions, MindSpore's
 *     route likewise, and one batch-1 `session.run`
 *   --transport grpc
 *     mindspore   MSService/Predict (the baseline)
 *     v2-grpc     GRPCInferenceService/ModelInfer to `<servable>.<method>`, inputs in
 *                 raw_input_contents, replies in raw_output_contents
 *
 *   npm run build && node dist/perf/kserve.js [--transport rest|grpc] [--cell-seconds 3]
 *       [--warmup-ms 500] [--repeats 1] [--concurrency 1,64] [--workers N]
 *       [--report perf/out/kserve-<transport>.md]
 *
 * The server runs in its own process (perf/suite/targets/actorserve.ts); the load is `actorserve
 * bench`'s generator (cli/bench-load.ts: closed loops on worker threads, keep-alive, pre-encoded
 * bodies; gRPC over node:http2, cli/bench-grpc.ts). Cells are interleaved (the variant order
 * rotates per repeat). Prints a Markdown table (req/s, p50, p99, server CPU per request, ratio
 * to the mindspore cell of the same workload and concurrency) and writes it to the report
 * file. Issue 15 asks v2-binary ≥ 2× v2-json for the MLP.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { type Payload, type Protocol, buildPayload } from '../cli/bench-input.js';
import { type LevelResult, type Plan, defaultWorkers, parseTarget, preflight, runLevel } from '../cli/bench-load.js';
import type { Tensor } from '../engine/tensor.js';
import { findProjectRoot } from '../servables/generate-models.js';
import { decodeJsonRequest, writeJsonReply } from '../transports/rest/json-codec.js';
import { decodeV2Request } from '../transports/rest/kserve-request.js';
import { v2InferReply } from '../transports/rest/kserve-response.js';
import type { Body } from '../transports/rest/exchange.js';
import { ReplyWriter } from '../transports/rest/reply-writer.js';
import { startTarget } from './suite/child.js';
import { baselineSessionOptions } from './suite/targets/session-options.js';
import { num, pairedRatio, spread, withRange } from './suite/stats.js';
import { MLP_WIDTH, prepareSuite, sampleJpeg } from './suite/servables.js';

type Transport = 'rest' | 'grpc';
type Variant = 'mindspore' | 'v2-json' | 'v2-binary' | 'v2-grpc';
const VARIANTS: Record<Transport, readonly Variant[]> = { rest: ['mindspore', 'v2-json', 'v2-binary'], grpc: ['mindspore', 'v2-grpc'] };
const TITLES: Record<Transport, string> = {
  rest: 'KServe v2 REST vs MindSpore REST',
  grpc: 'KServe v2 gRPC ModelInfer vs MindSpore gRPC Predict',
};

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

/** The bench protocol and payload of a variant: REST bodies, or the pre-encoded gRPC request. */
function variantPayload(v: Variant, w: Workload, mindsporeBody: Buffer, transport: Transport): { protocol: Protocol; payload: Payload } {
  const spec = { servable: w.servable, method: w.method, version: 0 };
  const where = `${w.id} input`;
  switch (v) {
    case 'mindspore':
      return { protocol: transport, payload: buildPayload(transport, mindsporeBody, spec, { where }) };
    case 'v2-json':
      return { protocol: 'rest', payload: v2Json(w) };
    case 'v2-binary':
      return { protocol: 'rest', payload: v2Binary(w) };
    case 'v2-grpc':
      return { protocol: 'kserve', payload: buildPayload('kserve', mindsporeBody, spec, { where }) };
  }
}

interface Row {
  readonly workload: string;
  readonly concurrency: number;
  readonly variant: Variant;
  readonly results: LevelResult[];
}

const median = (xs: readonly number[]): number => spread(xs).median;

function table(rows: readonly Row[]): string {
  const lines = [
    '| workload | c | variant | req/s median (min–max) | p50 ms | p99 ms | server CPU µs/req | vs mindspore: median (min–max) | errors |',
    '| --- | --: | --- | --: | --: | --: | --: | --: | --: |',
  ];
  const rps = (r: Row): number[] => r.results.map((x) => x.requestsPerSecond);
  for (const r of rows) {
    const base = rows.find((b) => b.workload === r.workload && b.concurrency === r.concurrency && b.variant === 'mindspore');
    const ratio = base ? pairedRatio(rps(r), rps(base)) : undefined;
    const errors = r.results.reduce((n, x) => n + x.errors, 0);
    lines.push(
      `| ${r.workload} | ${r.concurrency} | ${r.variant} | ${withRange(spread(rps(r)))} | ${num(median(r.results.map((x) => x.latencyMs.p50)))} | ` +
        `${num(median(r.results.map((x) => x.latencyMs.p99)))} | ${num(median(r.results.map((x) => x.serverCpuPerRequestUs ?? NaN)))} | ` +
        `${ratio === undefined || r === base ? '1.00×' : `${ratio.median.toFixed(2)}× (${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)})`} | ${errors} |`,
    );
  }
  return lines.join('\n');
}

/**
 * CPU µs per call of `fn`: the process's CPU time (all threads) per call in the fastest of 15
 * rounds of `n` calls, after a warm-up round. CPU time, not wall time, and the fastest round:
 * on a loaded machine a round that waits for a core costs no CPU, and the least disturbed round
 * (caches, shared cores) is closest to the work itself.
 */
async function cpuPerCallUs(fn: () => unknown, n = 100): Promise<number> {
  let best = Infinity;
  for (let r = 0; r < 16; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await fn();
    const d = process.cpuUsage(t0);
    if (r > 0) best = Math.min(best, (d.user + d.system) / n);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return best;
}

function encoded(body: Body): number {
  return typeof body === 'string' ? body.length : body instanceof Uint8Array ? body.byteLength : body.encode().byteLength;
}

/**
 * The MLP's per-request costs on the server's path, each timed alone in this process: the v2
 * body decoded (JSON text with 1024 numbers, or a 4 KiB binary chunk), MindSpore's JSON body
 * decoded (the native codec), the reply encoded (v2 JSON or binary, MindSpore JSON), and one batch-1
 * `session.run` of the model (actorserve's session options), in CPU time per call.
 */
async function mlpCosts(w: Workload, mindsporeBody: Buffer, mlpModel: string): Promise<string> {
  const json = v2Json(w).bytes;
  const jsonText = Buffer.from(json).toString('utf8');
  const bin = v2Binary(w);
  const binLength = Number(bin.headers['inference-header-content-length']);
  const y: Tensor = { dtype: 'float32', shape: [1, MLP_WIDTH], data: Float32Array.from({ length: MLP_WIDTH }, (_, i) => Math.sin(i) * 3.7) };
  const response = { model_name: w.servable, model_version: '1', outputs: [{ name: 'y', datatype: 'FP32' as const, shape: [1, MLP_WIDTH], tensor: y }] };
  const writer = new ReplyWriter();
  const costs = {
    decodeJson: await cpuPerCallUs(() => decodeV2Request(json, undefined)),
    jsonParse: await cpuPerCallUs(() => JSON.parse(jsonText) as unknown),
    decodeBinary: await cpuPerCallUs(() => decodeV2Request(bin.bytes, binLength)),
    decodeMindspore: await cpuPerCallUs(() => decodeJsonRequest(mindsporeBody, [{ name: 'x', dtype: 'float32' }])),
    encodeJson: await cpuPerCallUs(() => encoded(v2InferReply(response, () => false).body)),
    encodeBinary: await cpuPerCallUs(() => encoded(v2InferReply(response, () => true).body)),
    encodeMindspore: await cpuPerCallUs(() => writeJsonReply([{ y: { ...y, shape: [MLP_WIDTH] } }], writer)),
  };
  const session = await ort.InferenceSession.create(mlpModel, baselineSessionOptions(1));
  const feeds = { x: new ort.Tensor('float32', Float32Array.from((w.inputs['x'] as { values: number[] }).values), [1, MLP_WIDTH]) };
  const compute = await cpuPerCallUs(() => session.run(feeds), 20);
  await session.release();
  const f = (us: number): string => `${us.toFixed(0)} µs`;
  const jsonPath = costs.decodeJson + costs.encodeJson;
  const binPath = costs.decodeBinary + costs.encodeBinary;
  return [
    '## The MLP per request: codec against compute',
    '',
    `Per-request costs of the MLP on the server's path, each step run alone in the benchmark's process after the load cells, with the transport's own functions; ` +
      `CPU µs per call (process CPU time, the fastest of 15 rounds); ${(json.byteLength / 1024).toFixed(1)} KiB v2 JSON body, ${(bin.bytes.byteLength / 1024).toFixed(1)} KiB binary body:`,
    '',
    '| step | v2 JSON | v2 binary | MindSpore JSON |',
    '| --- | --: | --: | --: |',
    `| decode the body (\`decodeV2Request\`; MindSpore: \`decodeJsonRequest\`, native codec) | ${f(costs.decodeJson)} | ${f(costs.decodeBinary)} | ${f(costs.decodeMindspore)} |`,
    `| of which \`JSON.parse\` of the body text | ${f(costs.jsonParse)} | – | – |`,
    `| encode the [1, ${MLP_WIDTH}] reply (\`v2InferReply\`; MindSpore: \`writeJsonReply\`, native writer) | ${f(costs.encodeJson)} | ${f(costs.encodeBinary)} | ${f(costs.encodeMindspore)} |`,
    `| compute: one batch-1 \`session.run\` (onnxruntime-node, 1 intra-op thread) | ${f(compute)} | ${f(compute)} | ${f(compute)} |`,
    '',
    `Read: at c=1 a request's time is the work both variants do (the HTTP round trip, the engine hop to the device worker and back, the compute, the load generator's send and receive) ` +
      `plus the work only JSON does, Δ; so v2-binary ÷ v2-json in req/s is 1 + Δ ÷ T, T being a binary request's time, at least the compute (${f(compute)}). 2× needs Δ ≥ T. ` +
      `The server's codec makes Δ ${f(jsonPath - binPath)} (${f(jsonPath)} against ${f(binPath)}); the JSON body's extra bytes on the wire, in the HTTP layer and in the load generator add more, ` +
      `but Δ stays well under the compute. The server's codec alone accounts for 1 + ${f(jsonPath - binPath)} ÷ ${f(compute)} = ${(1 + (jsonPath - binPath) / compute).toFixed(2)}×. ` +
      'At c=64 requests are batched (the compute per instance shrinks, and runs on the device worker) while the codec runs on the server\'s event loop, so the codec sets the throughput: there the extension can show its full gain. ' +
      `v2 JSON's decode is mostly \`JSON.parse\` (${f(costs.jsonParse)} of ${f(costs.decodeJson)}); MindSpore's route decodes a body with the same 1024 numbers with the native codec in ${f(costs.decodeMindspore)}, ` +
      `so a native parser for v2 \`data\` arrays could save at most ~${f(Math.max(0, costs.decodeJson - costs.decodeMindspore))} per request.`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      transport: { type: 'string', default: 'rest' },
      'cell-seconds': { type: 'string', default: '3' },
      'warmup-ms': { type: 'string', default: '500' },
      repeats: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '1,64' },
      workers: { type: 'string' },
      report: { type: 'string' },
    },
  });
  const transport = values.transport as Transport;
  if (transport !== 'rest' && transport !== 'grpc') throw new Error(`--transport must be rest or grpc, got '${values.transport}'`);
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = findProjectRoot(here);
  const cellMs = Number(values['cell-seconds']) * 1000;
  const warmupMs = Number(values['warmup-ms']);
  const repeats = Number(values.repeats);
  const concurrency = values.concurrency.split(',').map(Number);
  const workers = values.workers ? Number(values.workers) : defaultWorkers();
  const reportPath = path.resolve(root, values.report ?? path.join('perf', 'out', `kserve-${transport}.md`));

  const files = await prepareSuite(path.join(root, 'perf', 'out'), root);
  const mlpX = (JSON.parse(await readFile(files.inputs.mlp, 'utf8')) as { instances: { x: number[] } }).instances.x;
  const workloads: Workload[] = [
    { id: 'add', servable: 'add', method: 'add_common', inputs: { x1: { shape: [1, 2, 2], values: [1, 1, 1, 1] }, x2: { shape: [1, 2, 2], values: [1, 1, 1, 1] } } },
    { id: `mlp 4×${MLP_WIDTH}`, servable: 'mlp', method: 'predict', inputs: { x: { shape: [1, MLP_WIDTH], values: mlpX } } },
    { id: 'resnet', servable: 'resnet', method: 'classify_top1', inputs: { image: { shape: [1], bytes: [await sampleJpeg()] } } },
  ];
  const mindsporeBodies: Record<string, Buffer> = { add: await readFile(files.inputs.add), mlp: await readFile(files.inputs.mlp), resnet: await readFile(files.inputs.resnet) };
  const variantsOf = (w: Workload): readonly Variant[] =>
    VARIANTS[transport].filter((v) => v !== 'v2-json' || Object.values(w.inputs).every((t) => 'values' in t));

  const load = os.loadavg();
  const loadText = (l: number[]): string => l.map((v) => v.toFixed(2)).join(' ');
  process.stderr.write(`kserve ${transport}: load average ${loadText(load)} on ${os.availableParallelism()} cores\n`);
  const server = await startTarget('actorserve', path.join(here, 'suite', 'targets', 'actorserve.js'), ['--servable-dir', files.servableDir, '--servables', 'add,mlp,resnet'], root);
  const rows: Row[] = [];
  try {
    const address = server.info[transport]!;
    const plans = new Map<string, Plan>();
    for (const w of workloads) {
      for (const v of variantsOf(w)) {
        const { protocol, payload } = variantPayload(v, w, mindsporeBodies[w.servable]!, transport);
        const plan: Plan = { protocol, ...parseTarget(address, protocol), payload, timeoutMs: 20_000, workers };
        await preflight(plan, 60_000);
        plans.set(`${w.id}/${v}`, plan);
      }
    }
    const serverPid = server.process.pid;
    for (const w of workloads) {
      for (const c of concurrency) {
        const variants = variantsOf(w);
        const byVariant = new Map<Variant, LevelResult[]>(variants.map((v) => [v, []]));
        for (let rep = 0; rep < repeats; rep++) {
          for (let i = 0; i < variants.length; i++) {
            const v = variants[(i + rep) % variants.length]!;
            const r = await runLevel(plans.get(`${w.id}/${v}`)!, { concurrency: c, durationMs: cellMs, warmupMs, ...(serverPid !== undefined ? { serverPid } : {}) });
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
  const loadEnd = os.loadavg();
  const mlp = workloads[1]!;
  const costs = transport === 'rest' ? await mlpCosts(mlp, mindsporeBodies['mlp']!, files.models.mlp) : '';
  const text =
    `# ${TITLES[transport]} (perf/kserve.ts)\n\n` +
    `${new Date().toISOString()}, ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores, Node ${process.version}; ` +
    `load average ${loadText(load)} at start, ${loadText(loadEnd)} after the load cells; ${repeats} repeat(s) of ${cellMs / 1000} s cells after ${warmupMs} ms warm-up, ` +
    `${workers} load thread(s); medians over repeats; the ratio to mindspore is taken repeat by repeat (the two cells ran back to back), then its median and range; ` +
    `server CPU is the server process's CPU time over the cell per successful request. ` +
    `Regenerate with \`npm run build && node dist/perf/kserve.js ${process.argv.slice(2).join(' ')}\`.\n\n${table(rows)}\n` +
    (costs ? `\n${costs}` : '');
  await mkdir(path.dirname(reportPath), { recursive: true });
  await writeFile(reportPath, text);
  process.stdout.write(`${text}\nwrote ${path.relative(process.cwd(), reportPath)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`kserve benchmark failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
