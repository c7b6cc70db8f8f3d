// castTensor (native/dtype-cast.ts), the one value-checked dtype conversion: every numeric dtype
// into every other, the bounds of each integer dtype (64-bit ones exactly), float16 and float32
// overflow, NaN and ±Infinity, bool, and the refusals (strings, bytes, into bool).
import t from 'tap';
import { castTensor } from '../../dist/native/dtype-cast.js';
import { canCast, DTYPES, TYPED_ARRAY, type NumericDType } from '../../dist/engine/dtypes.js';
import { ServingError } from '../../dist/engine/errors.js';
import { stringTensor, type Tensor } from '../../dist/engine/tensor.js';
import * as actorserve from '../../dist/index.js';

const NUMERIC = DTYPES.filter((d): d is NumericDType => d !== 'string' && d !== 'bytes');
/** float16 bits of 0, 1, 2, 3 and 100 */
const HALF: Record<number, number> = { 0: 0, 1: 0x3c00, 2: 0x4000, 3: 0x4200, 100: 0x5640 };

/** A tensor of `dtype` holding `values` (small non-negative integers every dtype holds). */
function of(dtype: NumericDType, values: readonly number[]): Tensor {
  const data = new TYPED_ARRAY[dtype](values.length);
  values.forEach((v, i) => {
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[i] = BigInt(v);
    else data[i] = dtype === 'float16' ? HALF[v]! : v;
  });
  return { dtype, shape: [values.length], data } as Tensor;
}

t.test('every numeric dtype converts to every other with the values kept', async (t) => {
  const values = [0, 1, 2, 3, 100];
  for (const from of NUMERIC) {
    if (from === 'bool') continue;
    for (const to of NUMERIC) {
      if (to === 'bool') continue;
      const out = castTensor(of(from, values), to);
      t.equal(out.dtype, to);
      t.same(out.shape, [5]);
      t.same(out.data, of(to, values).data, `${from} → ${to}`);
    }
  }
});

t.test('bool converts to numbers as 0 and 1; nothing converts to bool; strings never', async (t) => {
  const bools: Tensor = { dtype: 'bool', shape: [2], data: Uint8Array.of(1, 0) };
  for (const to of NUMERIC) if (to !== 'bool') t.same(castTensor(bools, to).data, of(to, [1, 0]).data, `bool → ${to}`);
  t.equal(castTensor(bools, 'bool'), bools, 'the same dtype: the same tensor');
  t.throws(() => castTensor(of('int32', [0, 1]), 'bool'), { code: 'E_INVALID_DTYPE', message: 'castTensor: int32 cannot be cast to bool (only bool converts to bool)' });
  t.throws(() => castTensor(stringTensor(['1']), 'float32', 'x'), { code: 'E_INVALID_DTYPE', message: 'x: string cannot be cast to float32' });
  t.notOk(canCast('bytes', 'uint8'));
  t.notOk(canCast('float32', 'string'));
  t.notOk(canCast('string', 'bytes'));
  t.ok(canCast('float16', 'int64'));
});

t.test('integers: only integers in range, 64-bit bounds exact', async (t) => {
  const f64 = (...v: number[]): Tensor => ({ dtype: 'float64', shape: [v.length], data: Float64Array.from(v) });
  t.same(castTensor(f64(-128, 127), 'int8').data, Int8Array.of(-128, 127));
  t.throws(() => castTensor(f64(1, 128), 'int8', 'in'), { code: 'E_INVALID_ARGUMENT', message: 'in: element [1] (128) is out of the int8 range [-128, 127]' });
  t.throws(() => castTensor(f64(-1), 'uint32'), { code: 'E_INVALID_ARGUMENT', message: /element \[0\] \(-1\) is out of the uint32 range \[0, 4294967295\]/ });
  t.throws(() => castTensor(f64(0.5), 'int64'), { code: 'E_INVALID_DTYPE', message: 'castTensor takes int64, but element [0] is 0.5, not an integer' });
  t.throws(() => castTensor(f64(Infinity), 'int32'), { code: 'E_INVALID_DTYPE', message: /is Infinity, not an integer/ });
  t.same(castTensor(f64(-(2 ** 63), 2 ** 62), 'int64').data, BigInt64Array.of(-(2n ** 63n), 2n ** 62n));
  t.throws(() => castTensor(f64(2 ** 63), 'int64'), { code: 'E_INVALID_ARGUMENT', message: /out of the int64 range \[-9223372036854775808, 9223372036854775807\]/ }, '2^63 is a double but not an int64');
  t.same(castTensor(f64(2 ** 63), 'uint64').data, BigUint64Array.of(2n ** 63n));
  const big: Tensor = { dtype: 'uint64', shape: [2], data: BigUint64Array.of(2n ** 63n - 1n, 2n ** 63n) };
  t.throws(() => castTensor(big, 'int64'), { code: 'E_INVALID_ARGUMENT', message: /element \[1\] \(9223372036854775808\) is out of the int64 range/ });
  t.same(castTensor({ dtype: 'int64', shape: [1], data: BigInt64Array.of(-5n) }, 'int16').data, Int16Array.of(-5));
  const shaped: Tensor = { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4.5) };
  t.throws(() => castTensor(shaped, 'int32'), { message: /element \[1\]\[1\] is 4\.5/ }, 'the element is named by its position in the shape');
});

t.test('floats: rounded, no overflow to Infinity, NaN and ±Infinity kept', async (t) => {
  const f64: Tensor = { dtype: 'float64', shape: [3], data: Float64Array.of(0.1, NaN, -Infinity) };
  const f32 = castTensor(f64, 'float32').data;
  t.same([f32[0], Number.isNaN(f32[1]), f32[2]], [Math.fround(0.1), true, -Infinity]);
  const half = castTensor(f64, 'float16').data;
  t.same([half[0], (half[1]! & 0x7c00) === 0x7c00 && (half[1]! & 0x3ff) !== 0, half[2]], [0x2e66, true, 0xfc00], 'float16 bits of 0.1, a NaN, -Infinity');
  t.throws(() => castTensor({ dtype: 'float64', shape: [], data: Float64Array.of(1e39) }, 'float32'), {
    code: 'E_INVALID_ARGUMENT',
    message: 'castTensor: the value (1e+39) is out of the float32 range ±3.4028234663852886e+38',
  });
  t.throws(() => castTensor({ dtype: 'int32', shape: [1], data: Int32Array.of(70000) }, 'float16'), {
    code: 'E_INVALID_ARGUMENT',
    message: /\(70000\) is out of the float16 range ±65504/,
  });
  t.same(castTensor({ dtype: 'int32', shape: [1], data: Int32Array.of(65519) }, 'float16').data, Uint16Array.of(0x7bff), '65519 rounds down to 65504');
  const i64: Tensor = { dtype: 'int64', shape: [1], data: BigInt64Array.of(2n ** 63n - 1n) };
  t.same(castTensor(i64, 'float32').data, Float32Array.of(2 ** 63), 'int64 rounds to the nearest float32');
  t.same(castTensor({ dtype: 'float16', shape: [2], data: Uint16Array.of(0x3555, 0xc000) }, 'float64').data, Float64Array.of(0.333251953125, -2), 'float16 values are exact in float64');
});

t.test("castTensor is part of the package's API", async (t) => {
  t.equal(actorserve.castTensor, castTensor);
  const out = actorserve.castTensor(actorserve.tensor('int32', [2], Int32Array.of(1, 2)), 'float32');
  t.same(out.data, Float32Array.of(1, 2));
  t.throws(() => actorserve.castTensor(stringTensor('a'), 'int8'), ServingError);
});
