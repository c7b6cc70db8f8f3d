/**
 * A minimal NumPy .npy reader (format versions 1.0, 2.0, 3.0): little-endian (or
 * byte-order-free) bool, int8-64, uint8-64, float16/32/64 arrays in C order. Enough for
 * `actorserve infer --input name=@file.npy` and a stateful model's initial state
 * (`initial: { file }`, docs/sequences.md); Fortran order, big-endian, structured and object
 * arrays are refused with a message saying so.
 */
import type { NumericDType } from './dtypes.js';
import { TYPED_ARRAY } from './dtypes.js';
import { ServingError } from './errors.js';
import { type Tensor, elementCount } from './tensor.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DESCR: Readonly<Record<string, NumericDType>> = {
  b1: 'bool',
  i1: 'int8',
  i2: 'int16',
  i4: 'int32',
  i8: 'int64',
  u1: 'uint8',
  u2: 'uint16',
  u4: 'uint32',
  u8: 'uint64',
  f2: 'float16',
  f4: 'float32',
  f8: 'float64',
};

export function readNpy(bytes: Uint8Array, what = 'the .npy file'): Tensor {
  const bad = (why: string): ServingError => new ServingError('E_INVALID_ARGUMENT', `${what}: ${why}`);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw bad('not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw bad('truncated header');
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw bad(`unsupported .npy format version ${major}.${bytes[7]}`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) throw bad('truncated header');
  const header = Buffer.from(bytes.buffer, bytes.byteOffset + headerStart, headerLen).toString(major === 3 ? 'utf8' : 'latin1');

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw bad(`cannot read the header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') throw bad('Fortran-order arrays are not supported; save a C-order array (np.ascontiguousarray)');
  const order = descr[0];
  const dtype = DESCR[descr.slice(1)];
  if (!dtype || !['<', '|', '='].includes(order!)) {
    throw bad(`dtype '${descr}' is not supported (little-endian bool, int8-64, uint8-64 and float16/32/64 are)`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      if (!/^\d+L?$/.test(s)) throw bad(`invalid shape (${shapeText})`);
      return Number.parseInt(s, 10);
    });
  const count = elementCount(shape, what);
  const Ctor = TYPED_ARRAY[dtype];
  const size = count * Ctor.BYTES_PER_ELEMENT;
  if (bytes.length - dataStart < size) throw bad(`holds ${bytes.length - dataStart} data bytes, shape (${shape.join(', ')}) of ${dtype} needs ${size}`);
  const copy = new Uint8Array(size);
  copy.set(bytes.subarray(dataStart, dataStart + size));
  return { dtype, shape, data: new Ctor(copy.buffer, 0, count) } as Tensor;
}

/** Writes a .npy (version 1.0) file's bytes: for tests and for users preparing inputs. */
export function writeNpy(t: { dtype: NumericDType; shape: readonly number[]; data: ArrayBufferView }): Buffer {
  const code = Object.entries(DESCR).find(([, d]) => d === t.dtype)![0];
  const descr = `${code === 'b1' || code.endsWith('1') ? '|' : '<'}${code}`;
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from(MAGIC).copy(head);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]);
}
