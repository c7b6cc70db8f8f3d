/**
 * Tensors from lists of plain values: v2 JSON `data` (flattened) and gRPC's typed `contents`
 * fields. Each datatype takes:
 *
 *   BOOL             true/false (and 0/1)
 *   INT*, UINT*      integers in the type's range; INT64/UINT64 also as bigint or a decimal
 *                    string (exact beyond 2^53, as protobuf int64 fields arrive)
 *   FP32, FP64       numbers, and the strings "NaN", "Infinity", "-Infinity"
 *   FP16             the same, rounded to binary16 (round to nearest even; JSON has no half
 *                    floats, so numbers are converted; binary data is the exact path)
 *   BYTES            strings (sent as UTF-8) or byte arrays (Uint8Array, gRPC bytes)
 *
 * Anything else is E_INVALID_ARGUMENT (400) naming the element's index.
 */
import type { DType } from '../../engine/dtypes.js';
import { ServingError } from '../../engine/errors.js';
import { type Tensor, elementCount } from '../../engine/tensor.js';
import { float32ToFloat16 } from '../../native/index.js';
import { toV2Datatype } from './datatypes.js';

const INT_RANGE = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
} as const;

const BIG_RANGE = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
} as const;

const FLOAT_WORDS: Readonly<Record<string, number>> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };
const DECIMAL_RE = /^-?\d{1,20}$/;

/**
 * A tensor of `dtype` and `shape` from `values` (flat, row-major). Throws E_INVALID_SHAPE when
 * the count does not match the shape, E_INVALID_ARGUMENT for a value the datatype cannot hold.
 */
export function tensorFromValues(dtype: DType, shape: readonly number[], values: ArrayLike<unknown>, what: string): Tensor {
  const count = elementCount(shape, what);
  if (values.length !== count) {
    throw new ServingError('E_INVALID_SHAPE', `${what}: shape [${shape.join(', ')}] needs ${count} elements, data has ${values.length}`);
  }
  const bad = (i: number, expected: string): never => {
    const v = values[i];
    const shown =
      typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint'
        ? String(v)
        : typeof v === 'string'
          ? JSON.stringify(v.slice(0, 40))
          : v === null
            ? 'null'
            : typeof v === 'object'
              ? 'an array or object'
              : typeof v;
    throw new ServingError('E_INVALID_ARGUMENT', `${what}: element ${i} is ${shown}, ${toV2Datatype(dtype)} takes ${expected}`);
  };
  switch (dtype) {
    case 'bool': {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) {
        const v = values[i];
        if (v === true || v === 1) out[i] = 1;
        else if (v !== false && v !== 0) bad(i, 'true or false');
      }
      return { dtype, shape, data: out };
    }
    case 'int8': case 'int16': case 'int32': case 'uint8': case 'uint16': case 'uint32': {
      const [lo, hi] = INT_RANGE[dtype];
      const out = new (TYPED[dtype])(count);
      for (let i = 0; i < count; i++) {
        const v = values[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(i, `integers in [${lo}, ${hi}]`);
        out[i] = v as number;
      }
      return { dtype, shape, data: out } as Tensor;
    }
    case 'int64': case 'uint64': {
      const [lo, hi] = BIG_RANGE[dtype];
      const out = dtype === 'int64' ? new BigInt64Array(count) : new BigUint64Array(count);
      for (let i = 0; i < count; i++) {
        const v = values[i];
        let b: bigint | undefined;
        if (typeof v === 'number') b = Number.isSafeInteger(v) ? BigInt(v) : undefined;
        else if (typeof v === 'bigint') b = v;
        else if (typeof v === 'string' && DECIMAL_RE.test(v)) b = BigInt(v);
        if (b === undefined || b < lo || b > hi) bad(i, `integers in [${lo}, ${hi}] (numbers up to 2^53, beyond that as decimal strings)`);
        out[i] = b!;
      }
      return { dtype, shape, data: out } as Tensor;
    }
    case 'float16': case 'float32': case 'float64': {
      const out = dtype === 'float64' ? new Float64Array(count) : new Float32Array(count);
      for (let i = 0; i < count; i++) {
        const v = values[i];
        if (typeof v === 'number') out[i] = v;
        else if (typeof v === 'string' && Object.hasOwn(FLOAT_WORDS, v)) out[i] = FLOAT_WORDS[v]!;
        else bad(i, 'numbers (or "NaN", "Infinity", "-Infinity")');
      }
      if (dtype === 'float16') return { dtype, shape, data: float32ToFloat16(out as Float32Array, new Uint16Array(count)) };
      return { dtype, shape, data: out } as Tensor;
    }
    case 'string': case 'bytes': {
      const out = new Array<Uint8Array>(count);
      for (let i = 0; i < count; i++) {
        const v = values[i];
        if (typeof v === 'string') out[i] = Buffer.from(v, 'utf8');
        else if (v instanceof Uint8Array) out[i] = v;
        else bad(i, 'strings');
      }
      return { dtype, shape, data: out };
    }
  }
}

const TYPED = {
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
} as const;
