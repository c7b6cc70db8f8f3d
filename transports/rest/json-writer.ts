/**
 * Numeric tensors → JSON text, in plain JS. The native addon is to export the same functions
 * (same names, arguments and output), so the codec can swap them in.
 *
 * Output rules:
 *  - nested lists follow the shape, row-major; a shape [] gives a bare value; a 0 in any dim
 *    gives empty lists at that depth (`[0]` → `[]`, `[2, 0]` → `[[],[]]`, `[0, 2]` → `[]`).
 *  - float32 and float16 print in the shortest form that reads back to the same float32 /
 *    float16 (3.2, not 3.200000047683716); float64 in the shortest form for a double.
 *    Integral floats keep a `.0` (2.0) so they read as floats; -0 prints as -0.0.
 *  - NaN and ±Infinity, which JSON cannot hold, print as the strings "NaN", "Infinity" and
 *    "-Infinity" (the protobuf JSON mapping's choice).
 *  - integers print exactly, int64/uint64 included (beyond 2^53 a JS client's JSON.parse
 *    loses precision: such clients should ask for msgpack).
 *  - bool prints true/false.
 */
import { floatToHalf, halfToFloat } from './float16.js';

type IntArray = Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array | BigInt64Array | BigUint64Array;

export function writeFloat32Json(data: Float32Array, shape: readonly number[]): string {
  return writeNested(shape, (i) => float32Text(data[i]!));
}

export function writeFloat64Json(data: Float64Array, shape: readonly number[]): string {
  return writeNested(shape, (i) => float64Text(data[i]!));
}

/** `data` holds binary16 bits. */
export function writeFloat16Json(data: Uint16Array, shape: readonly number[]): string {
  return writeNested(shape, (i) => float16Text(data[i]!));
}

export function writeIntJson(data: IntArray, shape: readonly number[]): string {
  return writeNested(shape, (i) => String(data[i]!));
}

/** `data` holds 0/1 bytes (any non-zero byte prints true). */
export function writeBoolJson(data: Uint8Array, shape: readonly number[]): string {
  return writeNested(shape, (i) => (data[i] !== 0 ? 'true' : 'false'));
}

/** Nested JSON lists following `shape`, with `element(i)` for the i-th value in row-major order. */
export function writeNested(shape: readonly number[], element: (i: number) => string): string {
  const rank = shape.length;
  if (rank === 0) return element(0);
  let out = '';
  let next = 0;
  const walk = (depth: number): void => {
    const n = shape[depth]!;
    out += '[';
    for (let i = 0; i < n; i++) {
      if (i > 0) out += ',';
      if (depth === rank - 1) out += element(next++);
      else walk(depth + 1);
    }
    out += ']';
  };
  walk(0);
  return out;
}

function nonFinite(v: number): string {
  return v !== v ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
}

/** Marks an integral decimal as a float (2 → 2.0); leaves 2.5, 1e+21 alone. */
function asFloat(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e || c === 0x65) return s; // '.' or 'e'
  }
  return `${s}.0`;
}

export function float64Text(v: number): string {
  if (!Number.isFinite(v)) return nonFinite(v);
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  return asFloat(String(v));
}

export function float32Text(v: number): string {
  if (!Number.isFinite(v)) return nonFinite(v);
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  // integers below 2^24 are exact in float32 and their digits are already the shortest form
  if (Number.isInteger(v) && v < 16777216 && v > -16777216) return `${v}.0`;
  // shortest precision p in [1, 9] whose decimal reads back as the same float32 (monotone in p)
  let lo = 1;
  let hi = 9;
  while (lo < hi) {
    const p = (lo + hi) >> 1;
    if (Math.fround(Number(v.toPrecision(p))) === v) hi = p;
    else lo = p + 1;
  }
  return asFloat(String(Number(v.toPrecision(lo))));
}

export function float16Text(bits: number): string {
  const v = halfToFloat(bits);
  if (!Number.isFinite(v)) return nonFinite(v);
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  if (Number.isInteger(v) && v < 2048 && v > -2048) return `${v}.0`;
  let lo = 1;
  let hi = 5;
  while (lo < hi) {
    const p = (lo + hi) >> 1;
    if (floatToHalf(Number(v.toPrecision(p))) === bits) hi = p;
    else lo = p + 1;
  }
  return asFloat(String(Number(v.toPrecision(lo))));
}
