/**
 * REST JSON codec: native addon vs plain JS.
 *   npm run build && node dist/perf/codec-bench.js [--quick]
 *
 * (a) parse a ~0.7 MB image-like body {"instances":[{"image": 224x224x3 ints}]}:
 *     native parseInstances vs JSON.parse + flatten into a Float64Array (the usual JS way,
 *     no ragged check), vs our JS twin (same checks as native).
 * (b) write 100k float32 model outputs as JSON: native (as a string, and as bytes into a reused
 *     buffer, which is what the REST server sends) vs JSON.stringify(Array.from(f32)) (the
 *     usual JS way; fast but wrong: 3.200000047683716) vs a correct shortest-float32 JS writer.
 * (c) the rest of the codec surface: float64/int32/bool writers, and small and medium bodies
 *     (per-call cost; bodies under SMALL_BODY bytes go to the JS twin), and the MLP input
 *     body (1024 float32 values as text: the float path of the parser).
 * Prints one table; ratios are "times faster than the baseline named in the row group".
 */
import { Buffer } from 'node:buffer';
import os from 'node:os';
import { type TimedResult, measureGroup } from './harness.js';
import { mulberry32 } from '../servables/onnx-builder.js';
import {
  js,
  jsonTextBound,
  nativeLoaded,
  nativeLoadError,
  parseInstances,
  writeBoolJson,
  writeFloat32Json,
  writeFloat64Json,
  writeIntJson,
  writeJsonInto,
} from '../native/index.js';

const quick = process.argv.includes('--quick');
const MIN_MS = quick ? 300 : 2000;

/** The usual JS decode: JSON.parse, then shape from the first elements and a flat copy. */
function jsonParseAndFlatten(body: Uint8Array, input = 'image'): { shape: number[]; data: Float64Array } {
  const doc = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')) as {
    instances: Array<Record<string, unknown>>;
  };
  const value = doc.instances[0]![input];
  const shape: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) shape.push(v.length);
  const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
  let k = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const e of v) walk(e);
    else data[k++] = v as number;
  };
  walk(value);
  return { shape, data };
}

const rows: Array<{ group: string; results: TimedResult[]; baseline: string }> = [];

// (a) parse an image-like body ------------------------------------------------------------------
const rand = mulberry32(1);
const H = 224;
const W = 224;
const image: number[][][] = [];
for (let y = 0; y < H; y++) {
  const row: number[][] = [];
  for (let x = 0; x < W; x++) row.push([Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(rand() * 256)]);
  image.push(row);
}
const imageBody = new Uint8Array(Buffer.from(JSON.stringify({ instances: [{ image }] })));
{
  const check = parseInstances(imageBody).instances[0]!['image']!;
  const ref = jsonParseAndFlatten(imageBody);
  if (check.kind !== 'numbers' || check.data.length !== ref.data.length || check.data.some((v, i) => v !== ref.data[i])) {
    throw new Error('parse results differ');
  }
  const decodedText = Buffer.from(imageBody).toString('utf8');
  rows.push({
    group: `(a) parse ${(imageBody.length / 1e6).toFixed(2)} MB body, 224x224x3 ints`,
    baseline: 'JSON.parse + flatten',
    results: await measureGroup(
      [
        { name: 'JSON.parse + flatten', fn: () => jsonParseAndFlatten(imageBody) },
        { name: 'JSON.parse only (string given)', fn: (): unknown => JSON.parse(decodedText) },
        { name: 'js.parseInstances (JS twin)', fn: () => js.parseInstances(imageBody) },
        { name: 'parseInstances (native)', fn: () => parseInstances(imageBody) },
      ],
      { minMs: MIN_MS, bytes: imageBody.length },
    ),
  });
}

// (b) write 100k float32 ------------------------------------------------------------------------
const N = 100_000;
const outputs = new Float32Array(N);
for (let i = 0; i < N; i++) {
  // model-output-like: normal(0, 2) via Box-Muller
  outputs[i] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()) * 2;
}
{
  const nativeText = writeFloat32Json(outputs, [N]);
  if (nativeText !== js.writeFloat32Json(outputs, [N])) throw new Error('writer texts differ');
  // What the REST server does (transports/rest/reply-writer.ts): bytes into a buffer reused by
  // every reply, no string made.
  const target = new Uint8Array(jsonTextBound(outputs, [N]));
  const end = writeJsonInto(outputs, [N], target, 0);
  if (Buffer.from(target.subarray(0, end)).toString('latin1') !== nativeText) throw new Error('writeJsonInto differs');
  rows.push({
    group: `(b) write 100k float32 (${(nativeText.length / 1e6).toFixed(2)} MB of JSON)`,
    baseline: 'JSON.stringify(Array.from) (wrong: long form)',
    results: await measureGroup(
      [
        { name: 'JSON.stringify(Array.from) (wrong: long form)', fn: () => JSON.stringify(Array.from(outputs)) },
        { name: 'js.writeFloat32Json (correct JS)', fn: () => js.writeFloat32Json(outputs, [N]) },
        { name: 'writeFloat32Json (native, a string)', fn: () => writeFloat32Json(outputs, [N]) },
        { name: 'writeJsonInto (native, bytes; REST path)', fn: () => writeJsonInto(outputs, [N], target, 0) },
      ],
      { minMs: MIN_MS, bytes: nativeText.length },
    ),
  });
}

// (c) the rest ----------------------------------------------------------------------------------
{
  const f64 = Float64Array.from(outputs, (x) => x * 1.000000001);
  const text = writeFloat64Json(f64, [N]);
  rows.push({
    group: '(c) write 100k float64',
    baseline: 'JSON.stringify(Array.from)',
    results: await measureGroup(
      [
        { name: 'JSON.stringify(Array.from)', fn: () => JSON.stringify(Array.from(f64)) },
        { name: 'js.writeFloat64Json', fn: () => js.writeFloat64Json(f64, [N]) },
        { name: 'writeFloat64Json (native)', fn: () => writeFloat64Json(f64, [N]) },
      ],
      { minMs: MIN_MS, bytes: text.length },
    ),
  });
  const i32 = Int32Array.from(outputs, (x) => Math.round(x * 1000));
  const itext = writeIntJson(i32, [N]);
  rows.push({
    group: '(c) write 100k int32',
    baseline: 'JSON.stringify(Array.from)',
    results: await measureGroup(
      [
        { name: 'JSON.stringify(Array.from)', fn: () => JSON.stringify(Array.from(i32)) },
        { name: 'js.writeIntJson', fn: () => js.writeIntJson(i32, [N]) },
        { name: 'writeIntJson (native)', fn: () => writeIntJson(i32, [N]) },
      ],
      { minMs: MIN_MS, bytes: itext.length },
    ),
  });
  const bools = Uint8Array.from(outputs, (x) => (x > 0 ? 1 : 0));
  const btext = writeBoolJson(bools, [N]);
  rows.push({
    group: '(c) write 100k bools',
    baseline: 'JSON.stringify(Array.from)',
    results: await measureGroup(
      [
        { name: 'JSON.stringify(Array.from)', fn: () => JSON.stringify(Array.from(bools, (b) => b !== 0)) },
        { name: 'js.writeBoolJson', fn: () => js.writeBoolJson(bools, [N]) },
        { name: 'writeBoolJson (native)', fn: () => writeBoolJson(bools, [N]) },
      ],
      { minMs: MIN_MS, bytes: btext.length },
    ),
  });
  const small = new Uint8Array(Buffer.from('{"instances":{"x1":[[1.0,1.0],[1.0,1.0]],"x2":[[1.0,1.0],[1.0,1.0]]}}'));
  const smallText = Buffer.from(small).toString();
  rows.push({
    group: '(c) parse the 71-byte add_common body',
    baseline: 'JSON.parse (no tensors)',
    results: await measureGroup(
      [
        { name: 'JSON.parse (no tensors)', fn: (): unknown => JSON.parse(Buffer.from(small.buffer, small.byteOffset, small.length).toString('utf8')) },
        { name: 'string given: JSON.parse only', fn: (): unknown => JSON.parse(smallText) },
        { name: 'js.parseInstances', fn: () => js.parseInstances(small) },
        { name: 'parseInstances (< SMALL_BODY: JS twin)', fn: () => parseInstances(small) },
      ],
      { minMs: MIN_MS, bytes: small.length },
    ),
  });
  const mid = new Uint8Array(Buffer.from(JSON.stringify({ instances: [{ x1: Array.from(outputs.subarray(0, 64), (v) => Math.round(v * 100) / 100), x2: Array.from(outputs.subarray(64, 128), (v) => Math.round(v * 100) / 100) }] })));
  const midText = Buffer.from(mid).toString();
  rows.push({
    group: `(c) parse a ${mid.length}-byte body, 2 x 64 floats`,
    baseline: 'JSON.parse (no tensors)',
    results: await measureGroup(
      [
        { name: 'JSON.parse (no tensors)', fn: (): unknown => JSON.parse(Buffer.from(mid.buffer, mid.byteOffset, mid.length).toString('utf8')) },
        { name: 'string given: JSON.parse only', fn: (): unknown => JSON.parse(midText) },
        { name: 'js.parseInstances', fn: () => js.parseInstances(mid) },
        { name: 'parseInstances (native)', fn: () => parseInstances(mid) },
      ],
      { minMs: MIN_MS, bytes: mid.length },
    ),
  });
  // The REST MLP workload: one [1024] float32 instance per request, as a client writes it
  // (shortest float32 text: up to 9 significant digits, e.g. -1.2345678).
  const floatBody = new Uint8Array(Buffer.from(`{"instances":[{"x":${writeFloat32Json(outputs.subarray(0, 1024), [1024])}}]}`));
  {
    const check = parseInstances(floatBody).instances[0]!['x']!;
    const ref = jsonParseAndFlatten(floatBody, 'x');
    if (check.kind !== 'numbers' || check.data.length !== 1024 || check.data.some((v, i) => !Object.is(v, ref.data[i]))) {
      throw new Error('float parse results differ');
    }
  }
  rows.push({
    group: `(c) parse a ${floatBody.length}-byte body, 1024 float32 texts (the MLP input)`,
    baseline: 'JSON.parse + flatten',
    results: await measureGroup(
      [
        { name: 'JSON.parse + flatten', fn: () => jsonParseAndFlatten(floatBody, 'x') },
        { name: 'js.parseInstances', fn: () => js.parseInstances(floatBody) },
        { name: 'parseInstances (native)', fn: () => parseInstances(floatBody) },
      ],
      { minMs: MIN_MS, bytes: floatBody.length },
    ),
  });
  const y = Float32Array.of(2, 2, 2, 2);
  rows.push({
    group: '(c) write one [2,2] float32 output',
    baseline: 'js.writeFloat32Json',
    results: await measureGroup([
      { name: 'js.writeFloat32Json', fn: () => js.writeFloat32Json(y, [2, 2]) },
      { name: 'writeFloat32Json (native)', fn: () => writeFloat32Json(y, [2, 2]) },
    ], { minMs: MIN_MS }),
  });
}

// report ----------------------------------------------------------------------------------------
const fmtMs = (ms: number) => (ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(1)} µs`);
console.log(`codec-bench: node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), native ${nativeLoaded ? 'loaded' : `NOT loaded: ${nativeLoadError}`}${quick ? ', --quick' : ''}`);
const header = ['case', 'ops/s', 'MB/s', 'p50', 'p99', 'vs baseline'];
const table: string[][] = [];
for (const { group, results, baseline } of rows) {
  table.push([group, '', '', '', '', '']);
  const base = results.find((r) => r.name === baseline)!;
  for (const r of results) {
    table.push([
      `  ${r.name}`,
      r.opsPerSec >= 100 ? r.opsPerSec.toFixed(0) : r.opsPerSec.toFixed(1),
      r.mbPerSec === undefined ? '' : r.mbPerSec.toFixed(0),
      fmtMs(r.p50),
      fmtMs(r.p99),
      r === base ? 'baseline' : `${(r.opsPerSec / base.opsPerSec).toFixed(2)}x`,
    ]);
  }
}
const widths = header.map((h, c) => Math.max(h.length, ...table.map((row) => row[c]!.length)));
const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
console.log(line(header));
for (const row of table) console.log(line(row));
