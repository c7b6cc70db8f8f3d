// Throughput of the REST codec's plain-JS paths: the baseline a native parser/writer must beat.
//
//   npm run build && node dist/perf/rest-codec.js [--elements 1000000]
//
// Prints MB/s (of JSON text) and Melem/s for: parseInstances (JSON.parse route), the whole JSON
// decode into a float32 tensor, float32/float64 JSON writing (random bit patterns and "nice"
// decimals), and the msgpack request/reply codec on the same tensor.
import { Packr } from 'msgpackr';
import { decodeJsonRequest } from '../transports/rest/json-codec.js';
import { parseInstances } from '../transports/rest/json-parse.js';
import { writeFloat32Json, writeFloat64Json } from '../transports/rest/json-writer.js';
import { decodeMsgpackRequest, encodeMsgpackReply } from '../transports/rest/msgpack-codec.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const N = arg('elements', 1_000_000);

function bench(label: string, bytes: number, elements: number, fn: () => unknown): void {
  fn(); // warm up
  const runs: number[] = [];
  const until = performance.now() + 3000;
  while (runs.length < 3 || (performance.now() < until && runs.length < 50)) {
    const t0 = performance.now();
    fn();
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  const ms = runs[Math.floor(runs.length / 2)]!;
  console.log(
    `${label.padEnd(44)} ${ms.toFixed(1).padStart(8)} ms  ${(bytes / 1e6 / (ms / 1000)).toFixed(0).padStart(6)} MB/s  ${(elements / 1e6 / (ms / 1000)).toFixed(1).padStart(6)} Melem/s`,
  );
}

let seed = 1;
const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const randomF32 = Float32Array.from({ length: N }, () => rand() * 2 - 1);
const niceF32 = Float32Array.from({ length: N }, (_, i) => (i % 1000) / 10);
const f64 = Float64Array.from(randomF32);
if (!Number.isInteger(N / 1000) || N < 1000) throw new RangeError('--elements must be a multiple of 1000');
const shape = [N / 1000, 1000];

console.log(`REST codec, ${N} elements (node ${process.version})`);
const jsonBody = Buffer.from(`{"instances":[{"x":${writeFloat32Json(randomF32, shape)}}]}`);
bench('parseInstances (JSON.parse route)', jsonBody.length, N, () => parseInstances(jsonBody));
bench('decodeJsonRequest → float32 tensor', jsonBody.length, N, () => decodeJsonRequest(jsonBody, [{ name: 'x', dtype: 'float32' }]));
const manyBody = Buffer.from(JSON.stringify({ instances: Array.from({ length: N / 4 }, (_, i) => ({ x: [[i, 1.5], [2.5, i]] })) }));
bench(`decodeJsonRequest, ${N / 4} instances of [2,2]`, manyBody.length, N, () => decodeJsonRequest(manyBody, [{ name: 'x', dtype: 'float32' }]));
const outLen = writeFloat32Json(randomF32, shape).length;
bench('writeFloat32Json, random values', outLen, N, () => writeFloat32Json(randomF32, shape));
bench('writeFloat32Json, short decimals', writeFloat32Json(niceF32, shape).length, N, () => writeFloat32Json(niceF32, shape));
bench('writeFloat64Json, random values', writeFloat64Json(f64, shape).length, N, () => writeFloat64Json(f64, shape));
const packr = new Packr({ useRecords: false });
const mpBody = packr.pack({ instances: [{ x: { dtype: 'float32', shape, data: Buffer.from(randomF32.buffer) } }] });
bench('decodeMsgpackRequest → float32 tensor', mpBody.length, N, () => decodeMsgpackRequest(mpBody, [{ name: 'x', dtype: 'float32' }]));
const outcome = [{ y: { dtype: 'float32' as const, shape, data: randomF32 } }];
bench('encodeMsgpackReply', randomF32.byteLength, N, () => encodeMsgpackReply(outcome));
