/**
 * Value-checked casts between numeric dtypes (bool and float16 included): the one conversion
 * the runtime applies to declared method inputs (actors/servable-runtime.ts), the REST JSON
 * codec to plain numbers, and stage functions through the package's `castTensor`. Here because
 * float16 conversion is native/'s (index.ts).
 *
 * A value converts when the target dtype can hold it:
 *  - into an integer dtype: it must be an integer (not NaN or ±Infinity) in the dtype's range;
 *  - into float16, float32, float64: rounded to the nearest (ties to even); a finite value that
 *    would round to ±Infinity (beyond ±65504 or ±3.4e38) is refused; NaN and ±Infinity stay;
 *  - bool converts to any numeric dtype as 0 and 1; nothing converts to bool but bool (which
 *    values count as true is the servable's choice);
 *  - string and bytes never convert to or from numbers.
 * Refusals are ServingErrors naming the element: E_INVALID_DTYPE for a dtype that does not
 * convert or a value that is not an integer, E_INVALID_ARGUMENT for a value out of range
 * (both 400 / INVALID_ARGUMENT).
 */
import { type NumericDType, TYPED_ARRAY, canCast, isNumericDType } from '../engine/dtypes.js';
import { ServingError } from '../engine/errors.js';
import type { Tensor, TensorOf } from '../engine/tensor.js';
import { float16ToFloat32, float32ToFloat16 } from './index.js';

type IntDType = Exclude<NumericDType, 'bool' | 'float16' | 'float32' | 'float64'>;

const INT_RANGE: { readonly [D in IntDType]: readonly [bigint, bigint] } = {
  int8: [-128n, 127n],
  int16: [-32768n, 32767n],
  int32: [-2147483648n, 2147483647n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint8: [0n, 255n],
  uint16: [0n, 65535n],
  uint32: [0n, 4294967295n],
  uint64: [0n, 2n ** 64n - 1n],
};

const FLOAT_MAX = { float16: 65504, float32: 3.4028234663852886e38 } as const;

/** "element [1][0]": where the flat index `i` sits in `shape` ("the value" for a scalar). */
export function elementAt(i: number, shape: readonly number[]): string {
  if (shape.length === 0) return 'the value';
  let s = '';
  for (let d = shape.length - 1; d >= 0; d--) {
    const dim = shape[d]!;
    s = `[${i % dim}]${s}`;
    i = Math.floor(i / dim);
  }
  return `element ${s}`;
}

/** Numbers, or 64-bit integers as bigints; float16 bits read as their float32 values. */
type SourceArray = Exclude<TensorOf<NumericDType>['data'], Uint16Array> | Uint16Array | Float32Array;

function sourceValues(t: TensorOf<NumericDType>): SourceArray {
  return t.dtype === 'float16' ? float16ToFloat32(t.data) : t.data;
}

const isBigIntArray = (a: SourceArray): a is BigInt64Array | BigUint64Array => a instanceof BigInt64Array || a instanceof BigUint64Array;

/**
 * `t` as a tensor of `dtype` (the same tensor when it already is one), by the rules above.
 * `where` starts the messages: "method 'norm' input 'x'", "add_cast input x1".
 */
export function castTensor<D extends NumericDType>(t: Tensor, dtype: D, where = 'castTensor'): TensorOf<D> {
  if (t.dtype === dtype) return t as TensorOf<D>;
  if (!canCast(t.dtype, dtype) || !isNumericDType(t.dtype)) {
    throw new ServingError('E_INVALID_DTYPE', `${where}: ${t.dtype} cannot be cast to ${dtype}${dtype === 'bool' ? ' (only bool converts to bool)' : ''}`);
  }
  const src = sourceValues(t as TensorOf<NumericDType>);
  const shape = t.shape;
  const data = dtype === 'float16' || dtype === 'float32' || dtype === 'float64' ? toFloats(src, dtype, shape, where) : toIntegers(src, dtype as IntDType, shape, where);
  return { dtype, shape, data } as unknown as TensorOf<D>;
}

function toFloats(src: SourceArray, dtype: 'float16' | 'float32' | 'float64', shape: readonly number[], where: string): Float64Array | Float32Array | Uint16Array {
  const big = isBigIntArray(src);
  if (dtype === 'float64') return big ? Float64Array.from(src, Number) : new Float64Array(src);
  // Through float32 for float16 too: double → float32 → float16 rounds as double → float16 does
  // (float32 has more than 2 × 11 + 2 bits), and int64 → double → float32 likewise.
  const f32 = big ? Float32Array.from(src, Number) : new Float32Array(src);
  const data = dtype === 'float32' ? f32 : float32ToFloat16(f32);
  for (let i = 0; i < data.length; i++) {
    const overflows = dtype === 'float32' ? f32[i]! - f32[i]! !== 0 : (data[i]! & 0x7fff) === 0x7c00;
    if (overflows && (big || Number.isFinite(src[i]))) {
      throw new ServingError('E_INVALID_ARGUMENT', `${where}: ${elementAt(i, shape)} (${src[i]}) is out of the ${dtype} range ±${FLOAT_MAX[dtype]}`);
    }
  }
  return data;
}

function toIntegers(src: SourceArray, dtype: IntDType, shape: readonly number[], where: string): TensorOf<IntDType>['data'] {
  const [lo, hi] = INT_RANGE[dtype];
  const wide = dtype === 'int64' || dtype === 'uint64';
  const outOfRange = (i: number): ServingError =>
    new ServingError('E_INVALID_ARGUMENT', `${where}: ${elementAt(i, shape)} (${src[i]}) is out of the ${dtype} range [${lo}, ${hi}]`);
  if (isBigIntArray(src)) {
    for (let i = 0; i < src.length; i++) if (src[i]! < lo || src[i]! > hi) throw outOfRange(i);
    if (dtype === 'int64') return BigInt64Array.from(src);
    if (dtype === 'uint64') return BigUint64Array.from(src);
    const data = new TYPED_ARRAY[dtype](src.length);
    for (let i = 0; i < src.length; i++) data[i] = Number(src[i]);
    return data;
  }
  const [nlo, nhi] = [Number(lo), Number(hi)];
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (!Number.isInteger(v)) throw new ServingError('E_INVALID_DTYPE', `${where} takes ${dtype}, but ${elementAt(i, shape)} is ${v}, not an integer`);
    // 64-bit bounds are not all doubles (2^63 - 1 rounds up to 2^63): compared exactly
    if (wide ? BigInt(v) < lo || BigInt(v) > hi : v < nlo || v > nhi) throw outOfRange(i);
  }
  if (dtype === 'int64') return BigInt64Array.from(src, (v) => BigInt(v));
  if (dtype === 'uint64') return BigUint64Array.from(src, (v) => BigInt(v));
  const data = new TYPED_ARRAY[dtype](src.length);
  data.set(src);
  return data;
}
