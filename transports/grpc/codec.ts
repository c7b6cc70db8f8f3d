/**
 * Tensors and errors on the gRPC wire (MindSpore Serving's ms_service.proto: its tensor, dtype
 * and error-reply rules), as pure functions shared by the server and the client:
 *
 *   WireTensor ──decodeTensor──► Tensor        (checks dtype, dims, byte sizes, value counts)
 *   Tensor ──encodeTensor──► WireTensor        (no copy of numeric data)
 *   ErrorCode ──msErrorCode──► MindSpore ErrorMsg.error_code
 *
 * Numeric data travels as raw little-endian C-order bytes in `data`; string and bytes
 * tensors as one `bytes_val` entry per element; shape [] is a scalar (one element).
 */
import { type DType, type NumericDType, TYPED_ARRAY, bytesPerElement, isNumericDType } from '../../engine/dtypes.js';
import { type ErrorCode, ServingError, isErrorCode } from '../../engine/errors.js';
import { type Instance, type Tensor, elementCount } from '../../engine/tensor.js';
import type { WireInstance, WireTensor } from './proto.js';

/** MindSpore Serving's DataType enum values, by our dtype names. */
export const WIRE_DTYPE: { readonly [K in DType]: number } = {
  bool: 1,
  int8: 2,
  uint8: 3,
  int16: 4,
  uint16: 5,
  int32: 6,
  uint32: 7,
  int64: 8,
  uint64: 9,
  float16: 10,
  float32: 11,
  float64: 12,
  string: 13,
  bytes: 14,
};

const DTYPE_OF_WIRE: readonly (DType | undefined)[] = (() => {
  const table: (DType | undefined)[] = [];
  for (const [name, value] of Object.entries(WIRE_DTYPE)) table[value] = name as DType;
  return table;
})();

/** Our dtype for a wire DataType value, or undefined (MS_UNKNOWN and values we do not know). */
export function dtypeOfWire(value: number | undefined): DType | undefined {
  return value === undefined ? undefined : DTYPE_OF_WIRE[value];
}

const EMPTY = new Uint8Array(0);

/**
 * A wire tensor as an engine tensor. Numeric data is viewed in place when aligned for its
 * element type (copied otherwise). Throws a ServingError naming `where` when the tensor is
 * malformed: unknown dtype, negative or fractional dims, a byte size that is not
 * product(shape) × element size, a value count that is not product(shape), values in the
 * field of the other kind, or MindSpore's internal shared-memory form.
 */
export function decodeTensor(t: WireTensor, where: string): Tensor {
  const dtype = dtypeOfWire(t.dtype);
  if (dtype === undefined) {
    throw new ServingError('E_INVALID_DTYPE', `${where}: unknown data type ${t.dtype ?? 0} (use a DataType from MS_BOOL = 1 to MS_BYTES = 14)`);
  }
  if (t.tensor_data === 'shm_data') {
    throw new ServingError('E_INVALID_ARGUMENT', `${where}: shared-memory tensors (shm_data) are internal to MindSpore Serving; send the values in data`);
  }
  const shape = t.shape?.dims ?? [];
  const count = elementCount(shape, where);
  const data = t.data ?? EMPTY;
  const values = t.bytes_val ?? [];
  if (isNumericDType(dtype)) {
    if (values.length > 0) {
      throw new ServingError('E_INVALID_ARGUMENT', `${where}: a ${dtype} tensor carries its values in data, not in bytes_val`);
    }
    const size = bytesPerElement(dtype);
    if (data.byteLength !== count * size) {
      throw new ServingError(
        'E_INVALID_SHAPE',
        `${where}: data holds ${data.byteLength} bytes, but shape [${shape.join(', ')}] of ${dtype} needs ${count * size}`,
      );
    }
    return { dtype, shape, data: numericView(dtype, data, count) } as Tensor;
  }
  if (data.byteLength > 0) {
    throw new ServingError('E_INVALID_ARGUMENT', `${where}: a ${dtype} tensor carries its values in bytes_val, not in data`);
  }
  if (values.length !== count) {
    throw new ServingError(
      'E_INVALID_SHAPE',
      `${where}: a ${dtype} tensor of shape [${shape.join(', ')}] needs ${count} value${count === 1 ? '' : 's'} in bytes_val, got ${values.length}`,
    );
  }
  return { dtype, shape, data: values.map(asBuffer) };
}

/** `count` elements of `dtype` viewing `bytes` when aligned for the element type, else a copy. */
export function numericView(dtype: NumericDType, bytes: Uint8Array, count: number) {
  const Ctor = TYPED_ARRAY[dtype];
  if (bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(bytes.buffer, bytes.byteOffset, count);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Ctor(copy.buffer, 0, count);
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** An engine tensor on the wire; numeric data is referenced, not copied. */
export function encodeTensor(t: Tensor): WireTensor {
  const shape = { dims: [...t.shape] };
  if (isNumericDType(t.dtype)) {
    const a = t.data as ArrayBufferView;
    return { shape, dtype: WIRE_DTYPE[t.dtype], data: Buffer.from(a.buffer, a.byteOffset, a.byteLength) };
  }
  return { shape, dtype: WIRE_DTYPE[t.dtype], bytes_val: t.data as Uint8Array[] };
}

/** Named wire tensors → an engine instance; `where` prefixes error messages ("instance 2"). */
export function decodeItems(items: Record<string, WireTensor> | undefined, where: string): Instance {
  const out: Instance = {};
  for (const [name, t] of Object.entries(items ?? {})) out[name] = decodeTensor(t, `${where}, input '${name}'`);
  return out;
}

export function encodeItems(instance: Instance): Record<string, WireTensor> {
  const items: Record<string, WireTensor> = {};
  for (const [name, t] of Object.entries(instance)) items[name] = encodeTensor(t);
  return items;
}

export function decodeInstances(instances: readonly WireInstance[]): Instance[] {
  const single = instances.length === 1;
  return instances.map((inst, i) => decodeItems(inst.items, single ? 'the instance' : `instance ${i}`));
}

// ---- errors ----

/** MindSpore Serving's ErrorMsg.error_code values (clients only test != 0). */
export const MS_STATUS = { SUCCESS: 0, FAILED: 1, INVALID_INPUTS: 2, SYSTEM_ERROR: 3, WORKER_UNAVAILABLE: 4, SERVABLE_UNAVAILABLE: 5 } as const;

/** The MindSpore error_code that best matches an actorserve error code. */
export function msErrorCode(code: ErrorCode): number {
  switch (code) {
    case 'E_UNKNOWN_SERVABLE':
    case 'E_UNKNOWN_METHOD':
    case 'E_UNKNOWN_VERSION':
    case 'E_INVALID_ARGUMENT':
    case 'E_NO_INSTANCES':
    case 'E_MISSING_INPUT':
    case 'E_EXTRA_INPUT':
    case 'E_INVALID_DTYPE':
    case 'E_INVALID_SHAPE':
      return MS_STATUS.INVALID_INPUTS;
    case 'E_ACTOR_DIED':
      return MS_STATUS.WORKER_UNAVAILABLE;
    case 'E_UNAVAILABLE':
    case 'E_STOPPED':
      return MS_STATUS.SERVABLE_UNAVAILABLE;
    case 'E_INTERNAL':
    case 'E_LOAD_FAILED':
    case 'E_CONFIG_INVALID':
      return MS_STATUS.SYSTEM_ERROR;
    default:
      return MS_STATUS.FAILED;
  }
}

/** The actorserve code for a MindSpore error_code (a server that sent no code trailer). */
export function codeOfMsError(msCode: number): ErrorCode {
  switch (msCode) {
    case MS_STATUS.INVALID_INPUTS:
      return 'E_INVALID_ARGUMENT';
    case MS_STATUS.WORKER_UNAVAILABLE:
    case MS_STATUS.SERVABLE_UNAVAILABLE:
      return 'E_UNAVAILABLE';
    case MS_STATUS.SYSTEM_ERROR:
      return 'E_INTERNAL';
    default:
      return 'E_MODEL_FAILED';
  }
}

/** gRPC status codes (@grpc/grpc-js `status`), spelled out so codec users need not import grpc-js. */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * The actorserve error for a call that ended with a non-OK gRPC status: the code from the
 * `actorserve-error-code` trailer when the server sent one, else one read from the status.
 */
export function errorOfStatus(status: number, details: string, trailerCode?: string): ServingError {
  if (isErrorCode(trailerCode)) return new ServingError(trailerCode, details);
  const text = details || `gRPC status ${status}`;
  switch (status) {
    case GRPC_STATUS.INVALID_ARGUMENT:
      return new ServingError('E_INVALID_ARGUMENT', text);
    case GRPC_STATUS.DEADLINE_EXCEEDED:
      return new ServingError('E_DEADLINE_EXCEEDED', `the call did not complete within its deadline (${text})`);
    case GRPC_STATUS.NOT_FOUND:
      return new ServingError('E_UNKNOWN_SERVABLE', text);
    case GRPC_STATUS.RESOURCE_EXHAUSTED:
      // grpc-js: "Received message larger than max (N vs. M)" (receiver) or
      // "Attempted to send message with a size larger than N" (sender)
      return /larger than/i.test(details)
        ? new ServingError('E_INVALID_ARGUMENT', `the message is larger than the gRPC message size limit (${text})`)
        : new ServingError('E_OVERLOADED', text);
    case GRPC_STATUS.UNAVAILABLE:
      return new ServingError('E_UNAVAILABLE', `the gRPC server is unavailable (${text})`);
    case GRPC_STATUS.CANCELLED:
      return new ServingError('E_STOPPED', `the call was cancelled (${text})`);
    case GRPC_STATUS.UNIMPLEMENTED:
      return new ServingError('E_UNKNOWN_METHOD', `the server does not implement this RPC (${text})`);
    case GRPC_STATUS.UNAUTHENTICATED:
      return new ServingError('E_INVALID_ARGUMENT', `the server refused the credentials (${text})`);
    default:
      return new ServingError('E_INTERNAL', `gRPC status ${status}: ${text}`);
  }
}
