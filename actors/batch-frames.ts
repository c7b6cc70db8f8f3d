/**
 * The device data path's frames in bytes: RunFrame and ReplyFrame (protocol.ts) written into
 * and read from a mailbox (mailbox.ts), and string/bytes tensors packed into a slot buffer.
 * Little-endian; every number is a float64 (ids, dims, offsets and lengths stay exact up to
 * 2^53) except small counts and codes (uint32).
 *
 *   RunFrame:   f64 id | u32 slot | u32 generation | u32 model | u32 subgraph | u32 n | u32 r | n × ref | r × row
 *   ReplyFrame: f64 id | u32 0 | u32 generation | u32 n | u32 0 | n × ref        (outputs)
 *               f64 id | u32 1 | u32 byte length | UTF-8 message                  (error)
 *   ref:        u32 dtype index (DTYPES) | u32 rank | rank × f64 dim | f64 offset | f64 length
 *   row:        f64 sequence handle | u32 flags (1 start, 2 end) | u32 0                (stateful models)
 */
import { DTYPES, type DType } from '../engine/dtypes.js';
import type { ReplyFrame, RunFrame, SequenceRow, TensorRef } from './protocol.js';

const HEAD = 32;
const REPLY_OUTPUTS = 0;
const REPLY_ERROR = 1;
/** An error message longer than this is cut (the frame must fit the mailbox). */
export const MAX_ERROR_BYTES = 4096;

const DTYPE_INDEX = new Map<DType, number>(DTYPES.map((d, i) => [d, i]));

function refBytes(refs: readonly TensorRef[]): number {
  let n = 0;
  for (const r of refs) n += 8 + 8 * r.dims.length + 16;
  return n;
}

function writeRefs(view: DataView, at: number, refs: readonly TensorRef[]): void {
  for (const r of refs) {
    view.setUint32(at, DTYPE_INDEX.get(r.dtype)!, true);
    view.setUint32(at + 4, r.dims.length, true);
    at += 8;
    for (const d of r.dims) {
      view.setFloat64(at, d, true);
      at += 8;
    }
    view.setFloat64(at, r.offset, true);
    view.setFloat64(at + 8, r.length, true);
    at += 16;
  }
}

function readRefs(view: DataView, at: number, count: number): TensorRef[] {
  const refs: TensorRef[] = [];
  for (let i = 0; i < count; i++) {
    const dtype = DTYPES[view.getUint32(at, true)];
    if (!dtype) throw new Error(`unknown dtype index ${view.getUint32(at, true)} in a device frame`);
    const rank = view.getUint32(at + 4, true);
    at += 8;
    const dims: number[] = [];
    for (let d = 0; d < rank; d++, at += 8) dims.push(view.getFloat64(at, true));
    refs.push({ dtype, dims, offset: view.getFloat64(at, true), length: view.getFloat64(at + 8, true) });
    at += 16;
  }
  return refs;
}

const ROW_BYTES = 16;
const ROW_START = 1;
const ROW_END = 2;

/** Bytes of a RunFrame. */
export function runFrameBytes(frame: RunFrame): number {
  return HEAD + refBytes(frame.inputs) + ROW_BYTES * (frame.rows?.length ?? 0);
}

export function writeRunFrame(frame: RunFrame, view: DataView, at: number): void {
  view.setFloat64(at, frame.id, true);
  view.setUint32(at + 8, frame.slot, true);
  view.setUint32(at + 12, frame.generation, true);
  view.setUint32(at + 16, frame.model, true);
  view.setUint32(at + 20, frame.subgraph, true);
  view.setUint32(at + 24, frame.inputs.length, true);
  view.setUint32(at + 28, frame.rows?.length ?? 0, true);
  writeRefs(view, at + HEAD, frame.inputs);
  let r = at + HEAD + refBytes(frame.inputs);
  for (const row of frame.rows ?? []) {
    view.setFloat64(r, row.handle, true);
    view.setUint32(r + 8, (row.start ? ROW_START : 0) | (row.end ? ROW_END : 0), true);
    view.setUint32(r + 12, 0, true);
    r += ROW_BYTES;
  }
}

export function readRunFrame(view: DataView, at: number): RunFrame {
  const inputs = readRefs(view, at + HEAD, view.getUint32(at + 24, true));
  const frame: RunFrame = {
    id: view.getFloat64(at, true),
    slot: view.getUint32(at + 8, true),
    generation: view.getUint32(at + 12, true),
    model: view.getUint32(at + 16, true),
    subgraph: view.getUint32(at + 20, true),
    inputs,
  };
  const count = view.getUint32(at + 28, true);
  if (count === 0) return frame;
  const rows: SequenceRow[] = [];
  for (let i = 0, r = at + HEAD + refBytes(inputs); i < count; i++, r += ROW_BYTES) {
    const flags = view.getUint32(r + 8, true);
    rows.push({ handle: view.getFloat64(r, true), start: (flags & ROW_START) !== 0, end: (flags & ROW_END) !== 0 });
  }
  return { ...frame, rows };
}

/** A ReplyFrame as the bytes it will take, and the writer of those bytes. */
export function encodeReplyFrame(frame: ReplyFrame): { readonly bytes: number; readonly write: (view: DataView, at: number) => void } {
  if ('error' in frame) {
    let message = Buffer.from(frame.error, 'utf8');
    if (message.byteLength > MAX_ERROR_BYTES) message = Buffer.concat([message.subarray(0, MAX_ERROR_BYTES - 3), Buffer.from('...')]);
    return {
      bytes: 16 + message.byteLength,
      write(view, at) {
        view.setFloat64(at, frame.id, true);
        view.setUint32(at + 8, REPLY_ERROR, true);
        view.setUint32(at + 12, message.byteLength, true);
        new Uint8Array(view.buffer, view.byteOffset + at + 16, message.byteLength).set(message);
      },
    };
  }
  return {
    bytes: 24 + refBytes(frame.outputs),
    write(view, at) {
      view.setFloat64(at, frame.id, true);
      view.setUint32(at + 8, REPLY_OUTPUTS, true);
      view.setUint32(at + 12, frame.generation, true);
      view.setUint32(at + 16, frame.outputs.length, true);
      view.setUint32(at + 20, 0, true);
      writeRefs(view, at + 24, frame.outputs);
    },
  };
}

export function readReplyFrame(view: DataView, at: number): ReplyFrame {
  const id = view.getFloat64(at, true);
  if (view.getUint32(at + 8, true) === REPLY_ERROR) {
    const bytes = new Uint8Array(view.buffer, view.byteOffset + at + 16, view.getUint32(at + 12, true));
    return { id, error: Buffer.from(bytes).toString('utf8') };
  }
  return { id, generation: view.getUint32(at + 12, true), outputs: readRefs(view, at + 24, view.getUint32(at + 16, true)) };
}

// ---------------------------------------------------------------------------------------------
// string/bytes tensors in a slot buffer: `count` uint32 byte lengths, then the bytes

/** Bytes a packed string tensor takes in a slot buffer (before alignment). */
export function packedStringBytes(strings: readonly Uint8Array[]): number {
  let n = 4 * strings.length;
  for (const s of strings) n += s.byteLength;
  return n;
}

/** Packs `strings` at `offset` (8-aligned) of `buffer`; returns the bytes written. */
export function packStrings(buffer: SharedArrayBuffer, offset: number, strings: readonly Uint8Array[]): number {
  const lengths = new Uint32Array(buffer, offset, strings.length);
  const bytes = new Uint8Array(buffer);
  let at = offset + 4 * strings.length;
  strings.forEach((s, i) => {
    lengths[i] = s.byteLength;
    bytes.set(s, at);
    at += s.byteLength;
  });
  return at - offset;
}

/** The `count` elements packed at `offset`, each copied out of the shared buffer. */
export function unpackStrings(buffer: SharedArrayBuffer, offset: number, count: number): Uint8Array[] {
  const lengths = new Uint32Array(buffer, offset, count);
  const bytes = new Uint8Array(buffer);
  let at = offset + 4 * count;
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    out.push(bytes.slice(at, at + lengths[i]!));
    at += lengths[i]!;
  }
  return out;
}
