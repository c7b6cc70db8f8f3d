/**
 * Client-side values: what `Client.infer` accepts as an input and how it becomes a tensor,
 * and tensors back to plain JSON-able values (for the CLI).
 *
 * | value                                   | tensor                                        |
 * |-----------------------------------------|-----------------------------------------------|
 * | `{ dtype, shape, data }`                | as given; `data` a typed array of the dtype's |
 * |                                         | kind, or a plain array converted to it;       |
 * |                                         | `shape` defaults to [data.length]             |
 * | Float32Array, Int32Array, ... (1-D)     | that dtype, shape [length] (Uint8Array: uint8)|
 * | number                                  | float64 scalar (shape [])                     |
 * | bigint                                  | int64 scalar                                  |
 * | boolean                                 | bool scalar                                   |
 * | string                                  | string scalar (UTF-8)                         |
 * | Buffer                                  | bytes scalar                                  |
 */
import { type DType, type NumericDType, TYPED_ARRAY, dtypeOfTypedArray, isDType, isNumericDType } from '../../engine/dtypes.js';
import { ServingError } from '../../engine/errors.js';
import { type Tensor, checkTensor, describeValue, elementCount } from '../../engine/tensor.js';
import { halfToNumber, numberToHalf } from '../../native/js-float16.js';

/** A tensor written loosely: data may be a plain array, shape may be left out (1-D). */
export interface TensorLike {
  readonly dtype: DType;
  readonly shape?: readonly number[];
  readonly data: ArrayLike<number | bigint | boolean> | readonly (string | Uint8Array)[];
}

export type TypedArrayInput =
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

export type InputValue = Tensor | TensorLike | TypedArrayInput | number | bigint | boolean | string | Buffer;

/** Named inputs of one instance. */
export type InputInstance = Readonly<Record<string, InputValue>>;

/** Converts an input value to a checked tensor; `where` names it in errors. */
export function toInputTensor(value: unknown, where: string): Tensor {
  switch (typeof value) {
    case 'number':
      return { dtype: 'float64', shape: [], data: Float64Array.of(value) };
    case 'bigint':
      return { dtype: 'int64', shape: [], data: BigInt64Array.of(value) };
    case 'boolean':
      return { dtype: 'bool', shape: [], data: Uint8Array.of(value ? 1 : 0) };
    case 'string':
      return { dtype: 'string', shape: [], data: [Buffer.from(value, 'utf8')] };
    default:
      break;
  }
  if (Buffer.isBuffer(value)) return { dtype: 'bytes', shape: [], data: [value] };
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const dtype = dtypeOfTypedArray(value);
    if (!dtype) throw new ServingError('E_INVALID_ARGUMENT', `${where}: cannot send a ${describeValue(value)} as a tensor`);
    return { dtype, shape: [(value as unknown as ArrayLike<unknown>).length], data: value } as unknown as Tensor;
  }
  if (typeof value === 'object' && value !== null && 'dtype' in value && 'data' in value) {
    return fromTensorLike(value as TensorLike, where);
  }
  throw new ServingError(
    'E_INVALID_ARGUMENT',
    `${where}: cannot send ${describeValue(value)} as a tensor (use { dtype, shape, data }, a typed array, a number, bigint, boolean, string or Buffer)`,
  );
}

function fromTensorLike(t: TensorLike, where: string): Tensor {
  if (!isDType(t.dtype)) throw new ServingError('E_INVALID_DTYPE', `${where}: unknown dtype ${JSON.stringify(t.dtype)}`);
  const data = t.data as unknown;
  if (data === null || typeof data !== 'object' || typeof (data as ArrayLike<unknown>).length !== 'number') {
    throw new ServingError('E_INVALID_ARGUMENT', `${where}: data must be a typed array or an array, got ${describeValue(data)}`);
  }
  const shape = t.shape === undefined ? [(data as ArrayLike<unknown>).length] : [...t.shape];
  if (!Array.isArray(shape)) throw new ServingError('E_INVALID_SHAPE', `${where}: shape must be an array of non-negative integers`);
  elementCount(shape, where);
  if (isNumericDType(t.dtype)) {
    const values = data instanceof TYPED_ARRAY[t.dtype] ? data : numericArray(t.dtype, data as ArrayLike<unknown>, where);
    return checkTensor({ dtype: t.dtype, shape, data: values }, where);
  }
  if (!Array.isArray(data)) throw new ServingError('E_INVALID_ARGUMENT', `${where}: a ${t.dtype} tensor's data must be an array of strings or Buffers`);
  const buffers = data.map((v: unknown, i: number) => {
    if (typeof v === 'string') return Buffer.from(v, 'utf8');
    if (v instanceof Uint8Array) return v;
    throw new ServingError('E_INVALID_ARGUMENT', `${where}: element ${i} of a ${t.dtype} tensor must be a string or a Buffer, got ${describeValue(v)}`);
  });
  return checkTensor({ dtype: t.dtype, shape, data: buffers }, where);
}

function numericArray(dtype: NumericDType, values: ArrayLike<unknown>, where: string) {
  const out = new TYPED_ARRAY[dtype](values.length);
  const wide = dtype === 'int64' || dtype === 'uint64';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    let n: number | bigint;
    if (typeof v === 'boolean') n = v ? 1 : 0;
    else if (typeof v === 'number' || typeof v === 'bigint') n = v;
    else throw new ServingError('E_INVALID_ARGUMENT', `${where}: element ${i} of a ${dtype} tensor is ${describeValue(v)}, not a number`);
    if (wide) {
      if (typeof n === 'number' && !Number.isInteger(n)) {
        throw new ServingError('E_INVALID_ARGUMENT', `${where}: element ${i} (${n}) is not an integer, as ${dtype} needs`);
      }
      (out as BigInt64Array)[i] = BigInt(n);
    } else if (dtype === 'float16') {
      (out as Uint16Array)[i] = numberToHalf(Number(n));
    } else if (dtype === 'bool') {
      (out as Uint8Array)[i] = Number(n) !== 0 ? 1 : 0;
    } else if (dtype === 'float32' || dtype === 'float64') {
      (out as Float64Array)[i] = Number(n);
    } else {
      const x = Number(n);
      (out as Int32Array)[i] = x;
      if ((out as Int32Array)[i] !== x) {
        throw new ServingError('E_INVALID_ARGUMENT', `${where}: element ${i} (${x}) is not an integer in the range of ${dtype}`);
      }
    }
  }
  return out;
}

// ---- tensors → plain values (JSON) ----

export type PlainValue = number | string | boolean | null | { b64: string } | PlainValue[];

/**
 * A tensor as nested arrays following its shape (a bare value for shape []): numbers for
 * numeric dtypes (int64/uint64 beyond 2^53 as decimal strings, float16 as its value, NaN and
 * ±Infinity as the strings "NaN", "Infinity", "-Infinity"), booleans for bool, strings for
 * string, `{ "b64": ... }` for bytes.
 */
export function tensorToPlain(t: Tensor): PlainValue {
  const n = elementCount(t.shape);
  const at = (i: number): PlainValue => {
    switch (t.dtype) {
      case 'string':
        return Buffer.from(t.data[i]!).toString('utf8');
      case 'bytes':
        return { b64: Buffer.from(t.data[i]!).toString('base64') };
      case 'bool':
        return t.data[i] !== 0;
      case 'int64':
      case 'uint64': {
        const v = t.data[i]!;
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
      }
      case 'float16':
        return finite(halfToNumber(t.data[i]!));
      default:
        return finite(t.data[i] as number);
    }
  };
  if (t.shape.length === 0) return n === 1 ? at(0) : null;
  let index = 0;
  const build = (dim: number): PlainValue[] => {
    const out: PlainValue[] = [];
    for (let k = 0; k < t.shape[dim]!; k++) out.push(dim === t.shape.length - 1 ? at(index++) : build(dim + 1));
    return out;
  };
  return build(0);
}

function finite(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}
