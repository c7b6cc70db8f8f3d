/**
 * float16 <-> float32 conversion of 1M elements: native addon vs the JS twin.
 *   npm run build && node dist/perf/float16-bench.js [--quick]
 * Both convert into a preallocated destination (what the device actor does with its arenas),
 * and, as a second row each, allocate the destination per call.
 */
import os from 'node:os';
import { type TimedResult, measureGroup } from './harness.js';
import { float16ToFloat32, float32ToFloat16, js, nativeLoaded, nativeLoadError } from '../native/index.js';

const quick = process.argv.includes('--quick');
const MIN_MS = quick ? 300 : 2000;
const N = 1 << 20;

// Deterministic data: model-like float32 values (some subnormal/overflowing/NaN for the
// rounding branches) and the half patterns they convert to.
const f32 = new Float32Array(N);
let seed = 7;
for (let i = 0; i < N; i++) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  f32[i] = ((seed / 2 ** 32) - 0.5) * (i % 97 === 0 ? 2e5 : 8);
}
f32[1] = 1e-7;
f32[2] = NaN;
const f16 = js.float32ToFloat16(f32);
const outF32 = new Float32Array(N);
const outF16 = new Uint16Array(N);

const groups: Array<[string, TimedResult[]]> = [
  [
    'float16 -> float32, 1M elements',
    await measureGroup([
      { name: 'js (table lookup), into dst', fn: () => js.float16ToFloat32(f16, outF32) },
      { name: 'native, into dst', fn: () => float16ToFloat32(f16, outF32) },
      { name: 'js, new dst per call', fn: () => js.float16ToFloat32(f16) },
      { name: 'native, new dst per call', fn: () => float16ToFloat32(f16) },
    ], { minMs: MIN_MS }),
  ],
  [
    'float32 -> float16, 1M elements',
    await measureGroup([
      { name: 'js (bit twiddling), into dst', fn: () => js.float32ToFloat16(f32, outF16) },
      { name: 'native, into dst', fn: () => float32ToFloat16(f32, outF16) },
      { name: 'js, new dst per call', fn: () => js.float32ToFloat16(f32) },
      { name: 'native, new dst per call', fn: () => float32ToFloat16(f32) },
    ], { minMs: MIN_MS }),
  ],
];

console.log(
  `float16-bench: node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), native ${nativeLoaded ? 'loaded' : `NOT loaded: ${nativeLoadError}`}${quick ? ', --quick' : ''}`,
);
const header = ['case', 'M elem/s', 'p50', 'p99', 'native/js'];
const rows: string[][] = [];
for (const [title, results] of groups) {
  rows.push([title, '', '', '', '']);
  results.forEach((r, i) => {
    const jsTwin = i % 2 === 1 ? results[i - 1]! : undefined; // native rows follow their JS row
    rows.push([
      `  ${r.name}`,
      (N / 1e6 / (r.p50 / 1000)).toFixed(0),
      `${r.p50.toFixed(2)} ms`,
      `${r.p99.toFixed(2)} ms`,
      jsTwin ? `${(jsTwin.p50 / r.p50).toFixed(2)}x` : '',
    ]);
  });
}
const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
console.log(line(header));
for (const row of rows) console.log(line(row));
