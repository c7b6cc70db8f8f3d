// Throughput of the REST transport's codec paths, as the server runs them: body → instances
// (the default `parseInstances`, then the dtype step), outcomes → JSON reply bytes
// (`writeJsonReply` into a reused ReplyWriter, as predict.ts sends them; one row of the older
// string path `tensorJson` beside it), and the msgpack request/reply codec on the same tensor.
//
//   npm run build && node dist/perf/rest-codec.js [--elements 1000000]
//
// Prints MB/s (of JSON text, or of tensor bytes for msgpack replies) and Melem/s. Every import
// goes through the transport's own modules (index.ts, json-codec.ts, msgpack-codec.ts), so the
// same script measures whichever parser and writers the transport uses. Each row is the median
// of up to 50 runs (at least 3, about 3 s); runs are separated by an event-loop turn, as server
// requests are, so the native codec's buffer pool can refill between them.
import { Packr } from 'msgpackr';
import { nativeLoaded } from '../native/index.js';
import { parseInstances } from '../transports/rest/index.js';
import { decodeJsonRequest, tensorJson, writeJsonReply } from '../transports/rest/json-codec.js';
import { ReplyWriter } from '../transports/rest/reply-writer.js';
import { decodeMsgpackRequest, encodeMsgpackReply } from '../transports/rest/msgpack-codec.js';
import type { Tensor } from '../engine/tensor.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const N = arg('elements', 1_000_000);
if (!Number.isInteger(N / 1000) || N < 1000) throw new RangeError('--elements must be a multiple of 1000');
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function bench(label: string, bytes: number, elements: number, fn: () => unknown): Promise<void> {
  fn(); // warm up
  await turn();
  const runs: number[] = [];
  const until = performance.now() + 3000;
  while (runs.length < 3 || (performance.now() < until && runs.length < 50)) {
    const t0 = performance.now();
    fn();
    runs.push(performance.now() - t0);
    await turn();
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
// float16 bits of random values in (-1, 1): sign, exponent 0..14, any mantissa
const f16 = Uint16Array.from({ length: N }, () => Math.floor(rand() * 0x7800) | (rand() < 0.5 ? 0x8000 : 0));
const shape = [N / 1000, 1000];
const tensor = (dtype: 'float32' | 'float64' | 'float16', data: Float32Array | Float64Array | Uint16Array): Tensor =>
  ({ dtype, shape, data }) as Tensor;
const t32 = tensor('float32', randomF32);
const tNice = tensor('float32', niceF32);
const t64 = tensor('float64', f64);
const t16 = tensor('float16', f16);

async function main(): Promise<void> {
  console.log(`REST codec, ${N} elements (node ${process.version}, native addon ${nativeLoaded ? 'loaded' : 'not loaded'})`);
  const jsonBody = Buffer.from(`{"instances":[{"x":${tensorJson(t32)}}]}`);
  await bench('parseInstances (the transport default)', jsonBody.length, N, () => parseInstances(jsonBody));
  await bench('decodeJsonRequest → float32 tensor', jsonBody.length, N, () => decodeJsonRequest(jsonBody, [{ name: 'x', dtype: 'float32' }]));
  await bench('decodeJsonRequest → float16 tensor', jsonBody.length, N, () => decodeJsonRequest(jsonBody, [{ name: 'x', dtype: 'float16' }]));
  const manyBody = Buffer.from(JSON.stringify({ instances: Array.from({ length: N / 4 }, (_, i) => ({ x: [[i, 1.5], [2.5, i]] })) }));
  await bench(`decodeJsonRequest, ${N / 4} instances of [2,2]`, manyBody.length, N, () => decodeJsonRequest(manyBody, [{ name: 'x', dtype: 'float32' }]));
  const writer = new ReplyWriter();
  const reply = (t: Tensor) => {
    const outcomes = [{ y: t }];
    return [writeJsonReply(outcomes, writer).length, N, () => writeJsonReply(outcomes, writer)] as const;
  };
  await bench('JSON reply float32, random values', ...reply(t32));
  await bench('  the same as a string (tensorJson)', tensorJson(t32).length, N, () => tensorJson(t32));
  await bench('JSON reply float32, short decimals', ...reply(tNice));
  await bench('JSON reply float64, random values', ...reply(t64));
  await bench('JSON reply float16, random values', ...reply(t16));
  const packr = new Packr({ useRecords: false });
  const mpBody = packr.pack({ instances: [{ x: { dtype: 'float32', shape, data: Buffer.from(randomF32.buffer) } }] });
  await bench('decodeMsgpackRequest → float32 tensor', mpBody.length, N, () => decodeMsgpackRequest(mpBody, [{ name: 'x', dtype: 'float32' }]));
  const outcome = [{ y: t32 }];
  await bench('encodeMsgpackReply', randomF32.byteLength, N, () => encodeMsgpackReply(outcome));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
