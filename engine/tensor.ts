/**
 * Tensors: `{ dtype, shape, data }`, with `data` a typed array for numeric dtypes and an
 * array of Buffers (one per element) for string and bytes.
 */
import {
  type BinaryDType,
  type DType,
  type NumericArray,
  type NumericDType,
  type TypedArrayByDType,
  TYPED_ARRAY,
  dtypeOfTypedArray,
  isDType,
  isNumericDType,
} from './dtypes.js';
import { ServingError } from './errors.js';

export type TensorOf<D extends DType> = D extends NumericDType
  ? { readonly dtype: D; readonly shape: readonly number[]; readonly data: TypedArrayByDType[D] }
  : { readonly dtype: D; readonly shape: readonly number[]; readonly data: readonly Uint8Array[] };

export type NumericTensor = { [D in NumericDType]: TensorOf<D> }[NumericDType];
export type BinaryTensor = { [D in BinaryDType]: TensorOf<D> }[BinaryDType];
/** A tensor: its dtype, its shape and its row-major data. */
export type Tensor = NumericTensor | BinaryTensor;

/** Named tensors of one instance (method inputs or outputs). */
export type Instance = Record<string, Tensor>;

/** Largest element count we accept in one tensor (2^31 - 1: typed arrays and ORT both cap near it). */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/** Product of dims; throws E_INVALID_SHAPE on negative, fractional or overflowing dims. */
export function elementCount(shape: readonly number[], what = 'tensor'): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ServingError('E_INVALID_SHAPE', `${what}: shape [${shape.join(', ')}] has an invalid dimension ${d}`);
    }
    n *= d;
    if (n > MAX_ELEMENTS) {
      throw new ServingError('E_INVALID_SHAPE', `${what}: shape [${shape.join(', ')}] holds more than 2^31-1 elements`);
    }
  }
  return n;
}

export function tensor<D extends NumericDType>(dtype: D, shape: readonly number[], data: TypedArrayByDType[D]): TensorOf<D>;
export function tensor<D extends BinaryDType>(dtype: D, shape: readonly number[], data: readonly Uint8Array[]): TensorOf<D>;
export function tensor(dtype: DType, shape: readonly number[], data: NumericArray | readonly Uint8Array[]): Tensor {
  return checkTensor({ dtype, shape, data }, 'tensor');
}

/** A UTF-8 string tensor of shape [] (one string) or [n]. */
export function stringTensor(values: string | readonly string[]): TensorOf<'string'> {
  const list = typeof values === 'string' ? [values] : values;
  return {
    dtype: 'string',
    shape: typeof values === 'string' ? [] : [list.length],
    data: list.map((s) => Buffer.from(s, 'utf8')),
  };
}

/** Decodes a string tensor's elements. */
export function tensorStrings(t: Tensor): string[] {
  if (isNumericDType(t.dtype)) throw new ServingError('E_INVALID_DTYPE', `expected a string tensor, got ${t.dtype}`);
  return (t.data as readonly Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'));
}

/**
 * Checks that `value` is a well-formed tensor (known dtype, valid shape, data of the right
 * kind and length) and returns it typed. `what` names it in error messages.
 */
export function checkTensor(value: unknown, what: string): Tensor {
  if (typeof value !== 'object' || value === null) {
    throw new ServingError('E_INVALID_ARGUMENT', `${what}: expected a tensor { dtype, shape, data }`);
  }
  const { dtype, shape, data } = value as { dtype?: unknown; shape?: unknown; data?: unknown };
  if (!isDType(dtype)) {
    throw new ServingError('E_INVALID_DTYPE', `${what}: unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape)) {
    throw new ServingError('E_INVALID_SHAPE', `${what}: shape must be an array of non-negative integers`);
  }
  const count = elementCount(shape as number[], what);
  if (isNumericDType(dtype)) {
    if (!(data instanceof TYPED_ARRAY[dtype])) {
      throw new ServingError(
        'E_INVALID_DTYPE',
        `${what}: dtype ${dtype} needs data in a ${TYPED_ARRAY[dtype].name}, got ${describeValue(data)}`,
      );
    }
    if ((data).length !== count) {
      throw new ServingError(
        'E_INVALID_SHAPE',
        `${what}: shape [${shape.join(', ')}] needs ${count} elements, data has ${(data).length}`,
      );
    }
  } else {
    if (!Array.isArray(data) || !data.every((b) => b instanceof Uint8Array)) {
      throw new ServingError('E_INVALID_DTYPE', `${what}: dtype ${dtype} needs data as an array of Buffers`);
    }
    if (data.length !== count) {
      throw new ServingError(
        'E_INVALID_SHAPE',
        `${what}: shape [${shape.join(', ')}] needs ${count} elements, data has ${data.length}`,
      );
    }
  }
  return value as Tensor;
}

/** A short name of what a value is, for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return (value).constructor?.name ?? 'object';
}

/** Byte size of a tensor's data (for binary dtypes, the sum of element lengths). */
export function tensorByteLength(t: Tensor): number {
  if (isNumericDType(t.dtype)) return (t.data as NumericArray).byteLength;
  let n = 0;
  for (const b of t.data as readonly Uint8Array[]) n += b.byteLength;
  return n;
}

/**
 * Converts what a stage function returned into a tensor:
 * a tensor stays as it is; a typed array becomes a 1-D tensor of its kind (Uint8Array → uint8,
 * Buffer → bytes scalar); number → float64 scalar; bigint → int64 scalar; boolean → bool scalar;
 * string → string scalar. Anything else is an error naming what it got.
 */
export function toTensor(value: unknown, what: string): Tensor {
  if (typeof value === 'number') return { dtype: 'float64', shape: [], data: Float64Array.of(value) };
  if (typeof value === 'bigint') return { dtype: 'int64', shape: [], data: BigInt64Array.of(value) };
  if (typeof value === 'boolean') return { dtype: 'bool', shape: [], data: Uint8Array.of(value ? 1 : 0) };
  if (typeof value === 'string') return stringTensor(value);
  if (Buffer.isBuffer(value)) return { dtype: 'bytes', shape: [], data: [value] };
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const dtype = dtypeOfTypedArray(value);
    if (dtype) return { dtype, shape: [(value as NumericArray).length], data: value } as unknown as Tensor;
  }
  if (typeof value === 'object' && value !== null && 'dtype' in value) return checkTensor(value, what);
  throw new ServingError('E_STAGE_FAILED', `${what}: cannot convert ${describeValue(value)} to a tensor`);
}

