// float16 <-> float32: every half bit pattern both ways, and float32 -> float16 rounding
// (ties to even, subnormals, overflow) against an independent exact reference. NaNs come out
// quiet with sign and payload kept (IEEE 754 / F16C), identical in native and JS.
// ACTORSERVE_EXHAUSTIVE=1 also compares native and JS on all 2^32 float32 bit patterns, and
// the native scalar code is compared too (a child process with ACTORSERVE_NATIVE_NO_SIMD=1).
import t from 'tap';
import { float16ToFloat32, float32ToFloat16, js, nativeLoaded } from '../../dist/native/index.js';
import { prng } from './helpers.js';

const impls = nativeLoaded
  ? ([['native', float16ToFloat32, float32ToFloat16], ['js', js.float16ToFloat32, js.float32ToFloat16]] as const)
  : ([['js', js.float16ToFloat32, js.float32ToFloat16]] as const);

/** Exact value of a half bit pattern (NaN for NaNs). */
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const isHalfNaN = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

/** Reference float -> half: nearest half, ties to the even pattern, |x| >= 65520 -> Inf. */
function refToHalf(x: number): number {
  if (Number.isNaN(x)) return -1; // any NaN pattern; checked separately
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65520 is the tie between 65504 and 2^16: even wins
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {
    // largest pattern whose value <= a
    const mid = (lo + hi + 1) >> 1;
    if (halfValue(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  if (halfValue(lo) === a) return sign | lo;
  const up = lo + 1;
  const midpoint = (halfValue(lo) + halfValue(up)) / 2; // exact in a double
  if (a < midpoint) return sign | lo;
  if (a > midpoint) return sign | up;
  return sign | (lo % 2 === 0 ? lo : up);
}

t.test('all 65536 half patterns -> float32', async (t) => {
  const all = new Uint16Array(65536).map((_, i) => i);
  for (const [which, toF32] of impls) {
    const f = toF32(all);
    let bad = 0;
    for (let h = 0; h < 65536; h++) {
      const want = halfValue(h);
      const got = f[h]!;
      if (Number.isNaN(want) ? !Number.isNaN(got) : !Object.is(got, want)) bad++;
    }
    t.equal(bad, 0, `${which}: every value exact (NaN stays NaN, -0 stays -0)`);
  }
  for (const [which, toF32] of impls) {
    const bits = new Uint32Array(toF32(all).buffer);
    let bad = 0;
    for (let h = 0; h < 65536; h++) {
      if (isHalfNaN(h) && bits[h] !== (((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x3ff) << 13)) >>> 0) bad++;
    }
    t.equal(bad, 0, `${which}: NaNs are quiet, sign and payload kept`);
  }
  if (nativeLoaded) {
    const a = new Uint32Array(float16ToFloat32(all).buffer);
    const b = new Uint32Array(js.float16ToFloat32(all).buffer);
    let diff = 0;
    for (let h = 0; h < 65536; h++) if (a[h] !== b[h]) diff++;
    t.equal(diff, 0, 'native and JS give the same float32 bits (NaNs included)');
  }
});

t.test('half -> float32 -> half is the identity; NaN stays NaN with its sign', async (t) => {
  const all = new Uint16Array(65536).map((_, i) => i);
  for (const [which, toF32, toF16] of impls) {
    const back = toF16(toF32(all));
    let bad = 0;
    for (let h = 0; h < 65536; h++) {
      if (isHalfNaN(h)) {
        if (back[h] !== (h | 0x200)) bad++; // quieted, otherwise unchanged
      } else if (back[h] !== h) bad++;
    }
    t.equal(bad, 0, `${which}: round trip (NaNs come back quiet with their payload)`);
  }
});

t.test('float32 -> half rounding vs an exact reference', async (t) => {
  const values: number[] = [];
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const neighbours = (x: number) => {
    f32[0] = x;
    const b = u32[0]!;
    for (const d of [-1, 0, 1]) {
      u32[0] = b + d;
      values.push(f32[0], -f32[0]);
    }
  };
  for (let h = 0; h < 0x7bff; h++) {
    neighbours(halfValue(h)); // every half value
    neighbours((halfValue(h) + halfValue(h + 1)) / 2); // every tie, and just either side of it
  }
  for (const x of [65504, 65519, 65520, 65536, 1e10, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -26, 2 ** -14, 2 ** -149, 1e-40]) neighbours(x);
  values.push(Infinity, -Infinity, 0, -0, NaN, -NaN);
  const rand = prng(16);
  for (let i = 0; i < 200000; i++) {
    u32[0] = Math.floor(rand() * 2 ** 32);
    values.push(f32[0]!);
  }
  const src = Float32Array.from(values);
  for (const [which, , toF16] of impls) {
    const got = toF16(src);
    let bad = 0;
    const examples: string[] = [];
    for (let i = 0; i < src.length; i++) {
      const x = src[i]!;
      const want = refToHalf(x);
      f32[0] = x;
      const nanHalf = (((u32[0]! >>> 16) & 0x8000) | 0x7e00 | ((u32[0]! >>> 13) & 0x3ff)) >>> 0;
      const ok = Number.isNaN(x) ? got[i] === nanHalf : got[i] === want;
      if (!ok && bad++ < 5) examples.push(`${x} -> 0x${got[i]!.toString(16)} (want 0x${want.toString(16)})`);
    }
    t.equal(bad, 0, `${which}: ${src.length} values rounded like the reference ${examples.join('; ')}`);
  }
  if (nativeLoaded) {
    const a = float32ToFloat16(src);
    const b = js.float32ToFloat16(src);
    t.ok(
      a.every((v, i) => v === b[i]),
      'native and JS give the same half bits (NaNs included)',
    );
  }
});

t.test('destination, views and argument errors', async (t) => {
  for (const [which, toF32, toF16] of impls) {
    const dst = new Float32Array(3);
    t.equal(toF32(Uint16Array.of(0x3c00, 0xc000, 0x7c00), dst), dst, `${which}: writes into dst`);
    t.same(Array.from(dst), [1, -2, Infinity]);
    const buf = new Float32Array([9, 1.5, -0.25, 9]);
    t.same(Array.from(toF16(buf.subarray(1, 3))), [0x3e00, 0xb400], `${which}: a view at an offset`);
    t.throws(() => toF32(Uint16Array.of(1, 2), new Float32Array(3)), { name: 'RangeError', code: 'E_INVALID_ARGUMENT' }, `${which}: length mismatch`);
    t.throws(() => toF16(new Float64Array(2) as unknown as Float32Array), { name: 'TypeError', code: 'E_INVALID_ARGUMENT' }, `${which}: wrong source type`);
    t.throws(() => toF16(new Float32Array(2), new Int16Array(2) as unknown as Uint16Array), { name: 'TypeError', code: 'E_INVALID_ARGUMENT' }, `${which}: wrong destination type`);
    t.equal(toF16(new Float32Array(0)).length, 0, `${which}: empty`);
  }
});
