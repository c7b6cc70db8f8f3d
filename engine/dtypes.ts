/**
 * The dtype set of MindSpore Serving and how each one is held in memory.
 * Numeric tensors live in typed arrays; float16 travels as raw IEEE-754 binary16 bits in a
 * Uint16Array; bool is one byte per element (0/1) in a Uint8Array; string and bytes tensors
 * hold one Buffer per element (strings as UTF-8).
 */

export const DTYPES = [
  'bool',
  'int8', 'int16', 'int32', 'int64',
  'uint8', 'uint16', 'uint32', 'uint64',
  'float16', 'float32', 'float64',
  'string', 'bytes',
] as const;

export type DType = (typeof DTYPES)[number];
export type NumericDType = Exclude<DType, 'string' | 'bytes'>;
export type BinaryDType = Extract<DType, 'string' | 'bytes'>;

export interface TypedArrayByDType {
  bool: Uint8Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  float16: Uint16Array;
  float32: Float32Array;
  float64: Float64Array;
}

export type NumericArray = TypedArrayByDType[NumericDType];

interface TypedArrayConstructorOf<A> {
  new (length: number): A;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): A;
  readonly BYTES_PER_ELEMENT: number;
}

export const TYPED_ARRAY: { [K in NumericDType]: TypedArrayConstructorOf<TypedArrayByDType[K]> } = {
  bool: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  float16: Uint16Array,
  float32: Float32Array,
  float64: Float64Array,
};

const DTYPE_SET: ReadonlySet<string> = new Set(DTYPES);

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && DTYPE_SET.has(value);
}

export function isNumericDType(dtype: DType): dtype is NumericDType {
  return dtype !== 'string' && dtype !== 'bytes';
}

/**
 * Whether a tensor of `from` converts to `to` (native/dtype-cast.ts `castTensor`; its values may
 * still be refused): between numeric dtypes, bool only into numbers; never strings or bytes.
 */
export function canCast(from: DType, to: DType): boolean {
  if (from === to) return true;
  return isNumericDType(from) && isNumericDType(to) && to !== 'bool';
}

export function bytesPerElement(dtype: NumericDType): number {
  return TYPED_ARRAY[dtype].BYTES_PER_ELEMENT;
}

/** Allocates a zeroed typed array of `length` elements for `dtype`. */
export function allocate<D extends NumericDType>(dtype: D, length: number): TypedArrayByDType[D] {
  return new TYPED_ARRAY[dtype](length);
}

/** A typed array of `dtype` viewing `length` elements of `buffer` from `byteOffset` (no copy). */
export function view<D extends NumericDType>(
  dtype: D,
  buffer: ArrayBufferLike,
  byteOffset: number,
  length: number,
): TypedArrayByDType[D] {
  return new TYPED_ARRAY[dtype](buffer, byteOffset, length);
}

/** True when `data` is the typed array kind that holds `dtype`. */
export function isArrayOfDType(dtype: NumericDType, data: unknown): boolean {
  return data instanceof TYPED_ARRAY[dtype];
}

/** ONNX Runtime's tensor type names for our dtypes (bytes travels as ORT `string`). */
export const ORT_TYPE: { [K in DType]: string } = {
  bool: 'bool',
  int8: 'int8', int16: 'int16', int32: 'int32', int64: 'int64',
  uint8: 'uint8', uint16: 'uint16', uint32: 'uint32', uint64: 'uint64',
  float16: 'float16', float32: 'float32', float64: 'float64',
  string: 'string', bytes: 'string',
};

const FROM_ORT: Readonly<Record<string, DType>> = {
  bool: 'bool',
  int8: 'int8', int16: 'int16', int32: 'int32', int64: 'int64',
  uint8: 'uint8', uint16: 'uint16', uint32: 'uint32', uint64: 'uint64',
  float16: 'float16', float32: 'float32', float64: 'float64',
  string: 'string',
};

/** Maps an ONNX Runtime tensor type name to our dtype, or undefined for types we do not serve. */
export function dtypeFromOrt(type: string): DType | undefined {
  return FROM_ORT[type];
}

const DTYPE_OF_TYPED_ARRAY: ReadonlyMap<unknown, NumericDType> = new Map<unknown, NumericDType>([
  [Int8Array, 'int8'],
  [Int16Array, 'int16'],
  [Int32Array, 'int32'],
  [BigInt64Array, 'int64'],
  [Uint8Array, 'uint8'],
  [Uint16Array, 'uint16'],
  [Uint32Array, 'uint32'],
  [BigUint64Array, 'uint64'],
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
]);

/** The dtype a plain typed array stands for (Uint8Array → uint8, Uint16Array → uint16), or undefined. */
export function dtypeOfTypedArray(value: unknown): NumericDType | undefined {
  return typeof value === 'object' && value !== null ? DTYPE_OF_TYPED_ARRAY.get(value.constructor) : undefined;
}
