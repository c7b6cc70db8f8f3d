/**
 * The JSON text native/index.ts has no writer for; every other number and bool output is
 * written by native/index.ts (`writeFloat32Json`, `writeFloat64Json`, `writeIntJson`,
 * `writeBoolJson`).
 *
 *  - `writeFloat16Json`: float16 prints in the shortest form that reads back to the same
 *    *float16*, which is shorter than float32's form of the same value: the float16 nearest
 *    0.1 (0.0999755859375) prints `0.1`, where float32's shortest form is `0.099975586`; the
 *    largest float16 prints `65500.0` (as numpy does), not `65504.0`. Layout as the native
 *    writers: JS number formatting, a `.0` on integral values, -0 as `-0.0`, NaN and ±Infinity
 *    as the strings "NaN", "Infinity", "-Infinity".
 *  - `writeNested`: nested lists following a shape, for string and bytes outputs.
 */
import { float16ToFloat32, writeFloat32Json, writeFloat64Json } from '../../native/index.js';

/** `data` holds binary16 bits. */
export function writeFloat16Json(data: Uint16Array, shape: readonly number[]): string {
  return writeNested(shape, (i) => {
    const h = data[i]!;
    return (halfText[h] ??= float16Text(h));
  });
}

/**
 * Nested JSON lists following `shape`, with `element(i)` for the i-th value in row-major order.
 * Each list is joined from an array of its parts (a rope of `+=` pieces per element measured
 * 6-9× slower on 10^6 elements).
 */
export function writeNested(shape: readonly number[], element: (i: number) => string): string {
  const rank = shape.length;
  if (rank === 0) return element(0);
  let next = 0;
  const row = new Array<string>(shape[rank - 1]!);
  const walk = (depth: number): string => {
    const n = shape[depth]!;
    if (depth === rank - 1) {
      for (let i = 0; i < n; i++) row[i] = element(next++);
      return `[${row.join(',')}]`;
    }
    const parts = new Array<string>(n);
    for (let i = 0; i < n; i++) parts[i] = walk(depth + 1);
    return `[${parts.join(',')}]`;
  };
  return walk(0);
}

/** Text of each float16 bit pattern met so far (computed once each, on first use). */
const halfText = new Array<string | undefined>(65536);
let halfValues: Float32Array | undefined;

/** The float16 value of every bit pattern (exact). */
function float16Values(): Float32Array {
  halfValues ??= float16ToFloat32(Uint16Array.from({ length: 65536 }, (_, h) => h), new Float32Array(65536));
  return halfValues;
}

function float16Text(h: number): string {
  const values = float16Values();
  const v = values[h]!;
  // zeros, infinities and NaNs: as the native float32 writer prints the same value
  if (v === 0 || !Number.isFinite(v)) return writeFloat32Json(Float32Array.of(v), []);
  // the fewest significant digits p (5 always suffice) whose nearest p-digit decimal reads back
  // as the same float16 (the native float64 writer formats it)
  for (let p = 1; p < 5; p++) {
    const c = Number(v.toPrecision(p));
    if (roundsToHalf(Math.abs(c), h & 0x7fff, values)) return writeFloat64Json(Float64Array.of(c), []);
  }
  return writeFloat64Json(Float64Array.of(Number(v.toPrecision(5))), []);
}

/**
 * Whether the double `a` (> 0) rounds to the finite float16 magnitude `m` (bits without the
 * sign): it lies between the midpoints to m's neighbours, or on one with m even (ties to even).
 * The midpoints are exact doubles; 65520 is where rounding overflows to Infinity.
 */
function roundsToHalf(a: number, m: number, values: Float32Array): boolean {
  const v = values[m]!;
  const low = (values[m - 1]! + v) / 2;
  const high = m === 0x7bff ? 65520 : (v + values[m + 1]!) / 2;
  return (a > low && a < high) || ((a === low || a === high) && (m & 1) === 0);
}
