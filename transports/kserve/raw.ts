/**
 * Tensors in the v2 raw layout, shared by REST's binary tensor data extension and gRPC's
 * `raw_input_contents` / `raw_output_contents`: row-major, little-endian, no padding; BOOL one
 * byte (0/1); BYTES one 4-byte little-endian length before each element's bytes.
 *
 * Decoding views the caller's bytes where it can (no copy): a numeric chunk whose offset is a
 * multiple of its element size becomes a typed array over the same memory, a misaligned one is
 * copied; BYTES elements are views of their bytes. The caller must keep the bytes unchanged
 * while the tensor is in use. (Typed arrays use the platform's byte order: every platform
 * Node.js supports for actorserve is little-endian.)
 */
import { type DType, type NumericArray, TYPED_ARRAY, isNumericDType } from '../../engine/dtypes.js';
import { ServingError } from '../../engine/errors.js';
import { type Tensor, elementCount } from '../../engine/tensor.js';

/**
 * The tensor `bytes` hold in the raw layout, for `dtype` and `shape`. Throws E_INVALID_SHAPE
 * (400) when the byte count does not fit the shape, E_INVALID_ARGUMENT for a BOOL byte other
 * than 0/1 or a BYTES length prefix that runs past the end. `what` names it in messages.
 */
export function tensorFromRaw(dtype: DType, shape: readonly number[], bytes: Uint8Array, what: string): Tensor {
  const count = elementCount(shape, what);
  if (!isNumericDType(dtype)) return { dtype, shape, data: splitBytesElements(bytes, count, shape, what) };
  const ctor = TYPED_ARRAY[dtype];
  const size = ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength !== count * size) {
    throw new ServingError(
      'E_INVALID_SHAPE',
      `${what}: shape [${shape.join(', ')}] of ${count} elements needs ${count * size} bytes, got ${bytes.byteLength}`,
    );
  }
  if (dtype === 'bool') {
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i]! > 1) throw new ServingError('E_INVALID_ARGUMENT', `${what}: BOOL element ${i} is byte ${bytes[i]}, expected 0 or 1`);
    }
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes); // a fresh, aligned copy (a Buffer's slice() would be a view)
  return { dtype, shape, data: new ctor(aligned.buffer, aligned.byteOffset, count) } as Tensor;
}

function splitBytesElements(bytes: Uint8Array, count: number, shape: readonly number[], what: string): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<Uint8Array>(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.byteLength) {
      throw new ServingError('E_INVALID_SHAPE', `${what}: shape [${shape.join(', ')}] needs ${count} BYTES elements, the data ends after ${i}`);
    }
    const length = view.getUint32(at, true);
    at += 4;
    if (at + length > bytes.byteLength) {
      throw new ServingError('E_INVALID_ARGUMENT', `${what}: BYTES element ${i} says ${length} bytes, only ${bytes.byteLength - at} are left`);
    }
    out[i] = bytes.subarray(at, at + length);
    at += length;
  }
  if (at !== bytes.byteLength) {
    throw new ServingError('E_INVALID_SHAPE', `${what}: shape [${shape.join(', ')}] holds ${count} BYTES elements, ${bytes.byteLength - at} bytes follow them`);
  }
  return out;
}

/** Bytes of `t` in the raw layout. */
export function rawByteLength(t: Tensor): number {
  if (isNumericDType(t.dtype)) return (t.data as NumericArray).byteLength;
  let n = 0;
  for (const b of t.data as readonly Uint8Array[]) n += 4 + b.byteLength;
  return n;
}

/** Writes `t` in the raw layout into `target` at `offset` (room for rawByteLength(t) is the caller's); returns the end offset. */
export function writeRawInto(t: Tensor, target: Uint8Array, offset: number): number {
  if (isNumericDType(t.dtype)) {
    const data = t.data as NumericArray;
    target.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    return offset + data.byteLength;
  }
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  let at = offset;
  for (const b of t.data as readonly Uint8Array[]) {
    view.setUint32(at, b.byteLength, true);
    target.set(b, at + 4);
    at += 4 + b.byteLength;
  }
  return at;
}

/** `t` in the raw layout: a view of a numeric tensor's memory (no copy), a new buffer for BYTES. */
export function tensorToRaw(t: Tensor): Uint8Array {
  if (isNumericDType(t.dtype)) {
    const data = t.data as NumericArray;
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  const out = new Uint8Array(rawByteLength(t));
  writeRawInto(t, out, 0);
  return out;
}
