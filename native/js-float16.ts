/**
 * Plain-JS IEEE 754 binary16 <-> binary32 conversion: the fallback when the addon is absent,
 * and the baseline of perf/float16-bench.ts. Same results as native/src/float16.cc bit for
 * bit: float32 -> float16 rounds to nearest, ties to even, overflow gives ±Inf; a NaN gives a
 * quiet NaN of the same sign keeping the payload bits that fit (as IEEE 754 and F16C do).
 */
import { conversionTarget } from './checks.js';

let halfTable: Float32Array | undefined;

/** float32 value of every float16 bit pattern (256 KiB, built on first use). */
function table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant === 0 ? sign * Infinity : NaN;
    else t[h] = sign * (1024 + mant) * 2 ** (exp - 25);
  }
  // NaNs as the native code makes them: sign and payload kept, quiet bit set.
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    if (((h >> 10) & 0x1f) === 0x1f && (h & 0x3ff) !== 0) bits[h] = ((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x3ff) << 13);
  }
  halfTable = t;
  return t;
}

export function float16ToFloat32(src: Uint16Array, dst?: Float32Array): Float32Array {
  const out = conversionTarget('float16ToFloat32', src, Uint16Array, dst, Float32Array);
  const t = table();
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = t[src[i]!]!;
  return out;
}

export function float32ToFloat16(src: Float32Array, dst?: Uint16Array): Uint16Array {
  const out = conversionTarget('float32ToFloat16', src, Float32Array, dst, Uint16Array);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = floatBitsToHalf(bits[i]!);
  return out;
}

/** One float32 (as its bits) to float16 bits; mirrors FloatToHalf in float16.cc. */
export function floatBitsToHalf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const absx = x & 0x7fffffff;
  if (absx >= 0x7f800000) return sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 | ((absx >>> 13) & 0x3ff) : 0);
  if (absx >= 0x477ff000) return sign | 0x7c00;
  if (absx < 0x38800000) {
    if (absx < 0x33000000) return sign;
    const shift = 126 - (absx >>> 23);
    const mant = (absx & 0x7fffff) | 0x800000;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (absx >>> 13) - (112 << 10);
  const rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** One number to float16 bits, rounded to float32 first (as a float32 tensor of it would be). */
export function numberToHalf(v: number): number {
  scratch[0] = v;
  return floatBitsToHalf(scratchBits[0]!);
}

/** The value of one float16 bit pattern. */
export function halfToNumber(h: number): number {
  return table()[h & 0xffff]!;
}
