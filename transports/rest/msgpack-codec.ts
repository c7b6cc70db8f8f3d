/**
 * The msgpack side of the RESTful protocol (`Content-Type: application/msgpack` bodies,
 * `Accept: application/msgpack` replies). The schema is in README.md: the JSON layout, with
 * tensors carried as `{dtype, shape, data: <bin, little-endian>}` maps.
 *
 * The body is checked structurally (msgpack-scan.ts) before msgpackr decodes it, and msgpackr
 * runs in plain mode (no records, maps as objects): nothing a peer sends configures the decoder.
 */
import { Packr, Unpackr } from 'msgpackr';
import { DTYPES, type DType, type NumericDType, TYPED_ARRAY, isDType, isNumericDType } from '../../engine/dtypes.js';
import { ServingError } from '../../engine/errors.js';
import { type Instance, type Tensor, elementCount } from '../../engine/tensor.js';
import type { InstanceOutcome } from '../../facade/engine.js';
import { type InputSpec, type TensorValue, decodeInstances, readShape } from './json-codec.js';
import { scanMsgpack } from './msgpack-scan.js';
import type { ParsedValue } from '../../native/index.js';
import { MAX_DEPTH, badRequest, preview, readB64Object, readInstances, readPlainValue } from './parsed-value.js';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });
const packr = new Packr({ useRecords: false, variableMapSize: true });

/** Decodes a msgpack request body into engine instances. Throws ServingError (400) on bad input. */
export function decodeMsgpackRequest(body: Uint8Array, inputs: readonly InputSpec[]): Instance[] {
  if (body.byteLength === 0) throw badRequest('the request body is empty; send a msgpack map {"instances": [...]}');
  scanMsgpack(body, MAX_DEPTH);
  let doc: unknown;
  try {
    doc = unpackr.unpack(body);
  } catch (err) {
    throw badRequest(`the msgpack body could not be decoded: ${(err as Error).message}`);
  }
  const parsed = readInstances<ParsedValue | TensorValue>(doc, readMsgpackValue);
  return decodeInstances(parsed.instances, inputs);
}

/** A msgpack body already decoded once by `decodeMsgpackRequest`, decoded again (its "parameters"). */
export function unpackMsgpack(body: Uint8Array): unknown {
  return unpackr.unpack(body);
}

function readMsgpackValue(value: unknown, where: string): ParsedValue | TensorValue {
  if (value instanceof Uint8Array) {
    return { kind: 'tensor', tensor: { dtype: 'bytes', shape: [], data: [copyBytes(value)] } };
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const dtype = TYPED_ARRAY_DTYPE.get(value.constructor);
    if (!dtype) throw badRequest(`${where}: a ${value.constructor.name} cannot be a tensor`);
    const data = new TYPED_ARRAY[dtype](copyBytes(value).buffer);
    return { kind: 'tensor', tensor: { dtype, shape: [data.length], data } as Tensor };
  }
  return readPlainValue<ParsedValue | TensorValue>(value, where, (obj, w) =>
    Object.hasOwn(obj, 'dtype') ? { kind: 'tensor', tensor: readTensorMap(obj, w) } : readB64Object(obj, w),
  );
}

const TYPED_ARRAY_DTYPE: ReadonlyMap<unknown, NumericDType> = new Map<unknown, NumericDType>([
  [Int8Array, 'int8'],
  [Int16Array, 'int16'],
  [Int32Array, 'int32'],
  [BigInt64Array, 'int64'],
  [Uint16Array, 'uint16'],
  [Uint32Array, 'uint32'],
  [BigUint64Array, 'uint64'],
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
]);

/** A fresh, 8-byte-aligned copy of a view's bytes (any typed array can view it). */
function copyBytes(view: ArrayBufferView): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(view.byteLength));
  out.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  return out;
}

/** `{dtype, shape?, data}`: numeric data as bin (or a msgpackr typed array), string/bytes data as a list. */
function readTensorMap(obj: Record<string, unknown>, where: string): Tensor {
  for (const key of Object.keys(obj)) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data') {
      throw badRequest(`${where}: a tensor map may only have the keys "dtype", "shape" and "data", got ${preview(key)}`);
    }
  }
  const { dtype, data } = obj;
  if (!isDType(dtype)) {
    throw new ServingError('E_INVALID_DTYPE', `${where}: "dtype" must be one of ${DTYPES.join(', ')}, got ${typeof dtype === 'string' ? preview(dtype) : typeof dtype}`);
  }
  if (isNumericDType(dtype)) {
    if (!ArrayBuffer.isView(data) || data instanceof DataView) {
      throw badRequest(`${where}: "data" of a ${dtype} tensor must be binary (little-endian ${dtype} values)`);
    }
    const size = TYPED_ARRAY[dtype].BYTES_PER_ELEMENT;
    const shape = obj.shape === undefined ? [Math.floor(data.byteLength / size)] : readShape(obj.shape, where);
    const count = elementCount(shape, where);
    if (data.byteLength !== count * size) {
      throw new ServingError(
        'E_INVALID_SHAPE',
        `${where}: "data" holds ${data.byteLength} bytes, but ${dtype} of shape [${shape.join(', ')}] needs ${count * size} (${count} × ${size})`,
      );
    }
    const bytes = copyBytes(data);
    if (dtype === 'bool') for (let i = 0; i < bytes.length; i++) if (bytes[i]! > 1) bytes[i] = 1;
    return { dtype, shape, data: new TYPED_ARRAY[dtype](bytes.buffer, 0, count) } as Tensor;
  }
  if (!Array.isArray(data)) throw badRequest(`${where}: "data" of a ${dtype} tensor must be a list of strings or binary values`);
  const shape = obj.shape === undefined ? [data.length] : readShape(obj.shape, where);
  const count = elementCount(shape, where);
  if (data.length !== count) {
    throw new ServingError('E_INVALID_SHAPE', `${where}: "data" holds ${data.length} values, but shape [${shape.join(', ')}] needs ${count}`);
  }
  return {
    dtype,
    shape,
    data: data.map((v, i) => {
      if (typeof v === 'string') return Buffer.from(v, 'utf8');
      if (v instanceof Uint8Array) return copyBytes(v);
      throw badRequest(`${where}: "data"[${i}] must be a string or binary value`);
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Replies

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function encodeMsgpackError(message: string): Uint8Array {
  return packr.pack({ error_msg: message });
}

/** `{instances: [{<output>: {dtype, shape, data}} | {error_msg}, ...]}` in request order. */
export function encodeMsgpackReply(outcomes: readonly InstanceOutcome[]): Uint8Array {
  return packr.pack({
    instances: outcomes.map((o) => {
      if (o instanceof ServingError) return { error_msg: o.message };
      const out: Record<string, unknown> = {};
      for (const [name, t] of Object.entries(o)) out[name] = tensorMap(t);
      return out;
    }),
  });
}

function tensorMap(t: Tensor): { dtype: DType; shape: readonly number[]; data: unknown } {
  if (isNumericDType(t.dtype)) {
    const d = t.data as ArrayBufferView;
    return { dtype: t.dtype, shape: t.shape, data: Buffer.from(d.buffer, d.byteOffset, d.byteLength) };
  }
  const items = t.data as readonly Uint8Array[];
  const data =
    t.dtype === 'string'
      ? items.map((b) => {
          try {
            return utf8.decode(b);
          } catch {
            return b; // not UTF-8: the raw bytes, as bin
          }
        })
      : items;
  return { dtype: t.dtype, shape: t.shape, data };
}
