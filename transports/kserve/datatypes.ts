/**
 * KServe v2 (Open Inference Protocol) datatype names and how they map onto actorserve's dtypes.
 *
 *   BOOL ↔ bool (one byte 0/1)   INT8..INT64 ↔ int8..int64   UINT8..UINT64 ↔ uint8..uint64
 *   FP16 ↔ float16 (raw binary16 bits)   FP32 ↔ float32   FP64 ↔ float64
 *   BYTES ↔ bytes, and string (UTF-8) on the way out
 *
 * BF16 is a v2 datatype that no actorserve model takes: it is refused (400) by name.
 */
import { type DType, type NumericDType, bytesPerElement } from '../../engine/dtypes.js';
import { ServingError } from '../../engine/errors.js';

export const V2_DATATYPES = [
  'BOOL',
  'UINT8', 'UINT16', 'UINT32', 'UINT64',
  'INT8', 'INT16', 'INT32', 'INT64',
  'FP16', 'FP32', 'FP64',
  'BYTES',
] as const;

export type V2Datatype = (typeof V2_DATATYPES)[number];

const TO_V2: { readonly [K in DType]: V2Datatype } = {
  bool: 'BOOL',
  int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64',
  uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64',
  float16: 'FP16', float32: 'FP32', float64: 'FP64',
  string: 'BYTES', bytes: 'BYTES',
};

const FROM_V2: { readonly [K in V2Datatype]: DType } = {
  BOOL: 'bool',
  INT8: 'int8', INT16: 'int16', INT32: 'int32', INT64: 'int64',
  UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64',
  FP16: 'float16', FP32: 'float32', FP64: 'float64',
  BYTES: 'bytes',
};

/** The v2 name of a dtype (string and bytes are both BYTES). */
export function toV2Datatype(dtype: DType): V2Datatype {
  return TO_V2[dtype];
}

export function isV2Datatype(name: unknown): name is V2Datatype {
  return typeof name === 'string' && Object.hasOwn(FROM_V2, name);
}

/**
 * The dtype a v2 datatype name decodes to (BYTES → bytes; inferV2 relabels it string where the
 * method input takes strings). Unknown or unsupported names (BF16, `TYPE_FP32`, lowercase) are
 * E_INVALID_DTYPE (400). `what` names the tensor in the message.
 */
export function fromV2Datatype(name: string, what = 'tensor'): DType {
  if (isV2Datatype(name)) return FROM_V2[name];
  const hint = name === 'BF16' ? ' (BF16 is not supported: no actorserve model takes bfloat16)' : '';
  throw new ServingError('E_INVALID_DTYPE', `${what}: unknown datatype ${JSON.stringify(name)}${hint}; use one of ${V2_DATATYPES.join(', ')}`);
}

/** Bytes per element in raw (binary) form; undefined for BYTES (variable length). */
export function v2ElementBytes(datatype: V2Datatype): number | undefined {
  const dtype = FROM_V2[datatype];
  return dtype === 'bytes' ? undefined : bytesPerElement(dtype as NumericDType);
}
