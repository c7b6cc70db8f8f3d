/**
 * The JSON side of the RESTful protocol (MindSpore Serving's rules as docs/rest.md states them, with
 * our decisions), as pure functions:
 *
 *   body ──parseInstances──► ParsedRequest ──toTensor(value, input dtype)──► Instance[]
 *   InstanceOutcome[] ──writeJsonReply──► {"instances": [...]} (bytes, reply-writer.ts)
 *
 * Step 1 (`parseInstances`) is native/index.ts's (the C++ addon, or its byte-identical JS twin
 * when the addon is absent); `startRestfulServer`'s `parseInstances` option can replace it.
 *
 * Step 2 chooses each tensor's dtype: where a method input has one (declared with
 * `register.method(name, { inputs })`, or the model's where it feeds a model directly), plain
 * JSON numbers become that dtype (range-checked); elsewhere integers → int32, other numbers →
 * float32, bools → bool, strings → string. `{"b64": ..., "type": ..., "shape": ...}` objects
 * carry any dtype as raw little-endian bytes (type defaults to bytes). Typed values (bools, a
 * numeric b64 type) keep their dtype: the runtime converts them to a declared input's dtype
 * and a model input refuses another dtype, as for gRPC and msgpack.
 *
 * Replies: numbers and bools by native/index.ts's writers (float16 by json-writer.ts).
 */
import { Buffer } from 'node:buffer';
import { type DType, type NumericDType, TYPED_ARRAY, isDType, isNumericDType } from '../../engine/dtypes.js';
import { ServingError } from '../../engine/errors.js';
import { type Instance, type Tensor, elementCount } from '../../engine/tensor.js';
import type { InstanceOutcome } from '../../facade/engine.js';
import {
  type ParsedRequest,
  type ParsedValue,
  parseInstances,
  writeBoolJson,
  writeFloat32Json,
  writeFloat64Json,
  writeIntJson,
} from '../../native/index.js';
import { castTensor, elementAt } from '../../native/dtype-cast.js';
import { decodeBase64, encodeBase64 } from './base64.js';
import { ReplyWriter } from './reply-writer.js';
import { writeFloat16Json, writeNested } from './json-writer.js';
import { badRequest, preview } from './parsed-value.js';

/** A method input as `describe()` reports it: `dtype` is present where it is declared or feeds a model directly. */
export interface InputSpec {
  readonly name: string;
  readonly dtype?: string;
}

/** Body → ParsedRequest: native/index.ts `parseInstances`, or a replacement with its contract. */
export type InstancesParser = (body: Uint8Array) => ParsedRequest;

/** A decoded value that is already a tensor (msgpack tensor maps, binary values). */
export interface TensorValue {
  readonly kind: 'tensor';
  readonly tensor: Tensor;
}

/** Decodes a JSON request body into engine instances. Throws ServingError (400) on bad input. */
export function decodeJsonRequest(
  body: Uint8Array,
  inputs: readonly InputSpec[],
  parse: InstancesParser = parseInstances,
): Instance[] {
  if (body.byteLength === 0) throw badRequest('the request body is empty; send {"instances": [...]}');
  // A UTF-8 byte order mark is skipped, as MindSpore's JSON parser does (RFC 8259 allows it).
  const json = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.subarray(3) : body;
  let parsed: ParsedRequest;
  try {
    parsed = parse(json);
  } catch (err) {
    if (err instanceof ServingError) throw err;
    throw badRequest((err as Error)?.message ?? String(err));
  }
  return decodeInstances(parsed.instances, inputs);
}

/**
 * ParsedRequest instances (JSON or msgpack) → engine instances, with each input's dtype chosen.
 * Also refuses what the parsers leave to their caller: zero instances, an instance naming no
 * inputs, an empty input name.
 */
export function decodeInstances(
  instances: ReadonlyArray<Readonly<Record<string, ParsedValue | TensorValue>>>,
  inputs: readonly InputSpec[],
): Instance[] {
  if (instances.length === 0) throw new ServingError('E_NO_INSTANCES', '"instances" is an empty list: send at least one instance');
  const expected = new Map<string, DType | undefined>(inputs.map((i) => [i.name, inputDType(i.dtype)]));
  return instances.map((values, i) => {
    const out: Instance = {};
    const names = Object.keys(values);
    if (names.length === 0) throw badRequest(`instance ${i} is an empty object: it names no inputs`);
    for (const name of names) {
      if (name === '') throw badRequest(`instance ${i} has an input with an empty name`);
      const value = values[name]!;
      const where = `instance ${i}, input '${name}'`;
      out[name] = value.kind === 'tensor' ? value.tensor : toTensor(value, expected.get(name), where);
    }
    return out;
  });
}

function inputDType(dtype: string | undefined): DType | undefined {
  return isDType(dtype) ? dtype : undefined;
}

// ---------------------------------------------------------------------------------------------
// Step 2: ParsedValue → Tensor

/**
 * One parsed value → a tensor. `expected` is the method input's dtype (declared, or the model
 * input's where it feeds a model directly; numbers convert to it), else undefined (MindSpore's
 * defaults).
 */
export function toTensor(value: ParsedValue, expected: DType | undefined, where: string): Tensor {
  switch (value.kind) {
    case 'numbers': {
      const count = value.data.length;
      if (count === 0 && expected !== undefined) return emptyTensor(expected, value.shape);
      const dtype: DType = expected ?? (value.integers ? 'int32' : 'float32');
      if (!isNumericDType(dtype) || dtype === 'bool') {
        throw new ServingError('E_INVALID_DTYPE', `${where} takes ${dtype}, got numbers`);
      }
      return numbersTensor(value.data, value.shape, dtype, where);
    }
    case 'bools': {
      if (value.data.length === 0 && expected !== undefined) return emptyTensor(expected, value.shape);
      // Bools are typed: a numeric input decides (the runtime converts them for a declared
      // input, a model input refuses them), as it does for gRPC and msgpack.
      if (expected !== undefined && !isNumericDType(expected)) {
        throw new ServingError('E_INVALID_DTYPE', `${where} takes ${expected}, got bools`);
      }
      return { dtype: 'bool', shape: value.shape, data: value.data };
    }
    case 'strings': {
      if (value.data.length === 0 && expected !== undefined) return emptyTensor(expected, value.shape);
      if (expected !== undefined && expected !== 'string' && expected !== 'bytes') {
        throw new ServingError('E_INVALID_DTYPE', `${where} takes ${expected}, got strings`);
      }
      return { dtype: expected ?? 'string', shape: value.shape, data: value.data.map((s) => Buffer.from(s, 'utf8')) };
    }
    case 'b64':
      return b64Tensor(value.b64, value.type, value.shape, expected, where);
    default:
      throw badRequest(`${where}: unknown value kind ${JSON.stringify((value as { kind?: unknown }).kind)}`);
  }
}

function emptyTensor(dtype: DType, shape: number[]): Tensor {
  if (isNumericDType(dtype)) return { dtype, shape, data: new TYPED_ARRAY[dtype](0) } as Tensor;
  return { dtype, shape, data: [] };
}

/**
 * JSON numbers → `dtype` by native/dtype-cast.ts's rules (the runtime's for declared inputs):
 * integers in range for integer dtypes, no overflow to ±Infinity for floats. 64-bit integers
 * also stay within ±2^53, where JSON numbers (doubles) are exact.
 */
function numbersTensor(src: Float64Array, shape: number[], dtype: Exclude<NumericDType, 'bool'>, where: string): Tensor {
  if (dtype === 'float64') {
    // The parsed data is ours: no copy, unless it is a view into the buffer the request's small
    // values share (native/README.md), which a postMessage to a stage thread would clone whole.
    const owns = src.byteOffset === 0 && src.byteLength === src.buffer.byteLength;
    return { dtype, shape, data: owns ? src : src.slice() };
  }
  if (dtype === 'int64' || dtype === 'uint64') {
    const lo = dtype === 'int64' ? -Number.MAX_SAFE_INTEGER : 0;
    for (let i = 0; i < src.length; i++) {
      const v = src[i]!;
      if (!Number.isInteger(v)) break; // castTensor words it
      if (v < lo || v > Number.MAX_SAFE_INTEGER) {
        throw badRequest(
          `${where}: ${elementAt(i, shape)} (${v}) is out of the ${dtype} range [${lo}, ${Number.MAX_SAFE_INTEGER}] (JSON numbers beyond ±2^53 are inexact: send them as b64 data)`,
        );
      }
    }
  }
  return castTensor({ dtype: 'float64', shape, data: src }, dtype, where);
}

/** b64 object `type` names (MindSpore's set, plus our dtype names). */
const B64_TYPES: Readonly<Record<string, DType>> = {
  bool: 'bool',
  int8: 'int8', int16: 'int16', int32: 'int32', int64: 'int64',
  uint8: 'uint8', uint16: 'uint16', uint32: 'uint32', uint64: 'uint64',
  fp16: 'float16', float16: 'float16',
  fp32: 'float32', float32: 'float32',
  fp64: 'float64', float64: 'float64',
  str: 'string', string: 'string',
  bytes: 'bytes',
};

function b64Tensor(text: string, type: string | undefined, shapeValue: readonly number[] | undefined, expected: DType | undefined, where: string): Tensor {
  let dtype: DType = 'bytes';
  if (type !== undefined) {
    if (!Object.hasOwn(B64_TYPES, type)) {
      throw new ServingError('E_INVALID_DTYPE', `${where}: "type" must be one of ${Object.keys(B64_TYPES).join(', ')}; got ${preview(type)}`);
    }
    dtype = B64_TYPES[type]!;
  }
  const shape = readShape(shapeValue, where);
  const count = elementCount(shape, where);
  // A numeric b64 type is the client's: as for gRPC and msgpack, the runtime converts it to a
  // declared input's dtype, and a model input refuses another dtype. Bytes never become numbers.
  if (expected !== undefined && isNumericDType(expected) && !isNumericDType(dtype)) {
    throw new ServingError(
      'E_INVALID_DTYPE',
      `${where} takes ${expected}, the b64 object holds ${dtype}${type === undefined ? ' (the default type; set "type": "' + expected + '")' : ''}`,
    );
  }
  const bytes = decodeBase64(text, where);
  if (!isNumericDType(dtype)) {
    if (count !== 1) {
      throw new ServingError('E_INVALID_SHAPE', `${where}: a b64 object of type ${dtype} holds one value, so its shape must have one element, got [${shape.join(', ')}]`);
    }
    return { dtype, shape, data: [bytes] };
  }
  const size = TYPED_ARRAY[dtype].BYTES_PER_ELEMENT;
  if (bytes.byteLength !== count * size) {
    throw new ServingError(
      'E_INVALID_SHAPE',
      `${where}: the b64 data holds ${bytes.byteLength} bytes, but ${dtype} of shape [${shape.join(', ')}] needs ${count * size} (${count} × ${size})`,
    );
  }
  if (dtype === 'bool') for (let i = 0; i < bytes.length; i++) if (bytes[i]! > 1) bytes[i] = 1;
  return { dtype, shape, data: new TYPED_ARRAY[dtype](bytes.buffer, 0, count) } as Tensor;
}

/** A shape given by a client: a list of non-negative integers (absent → scalar). */
export function readShape(value: unknown, where: string): number[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ServingError('E_INVALID_SHAPE', `${where}: "shape" must be a list of non-negative integers`);
  if (value.length > 64) throw new ServingError('E_INVALID_SHAPE', `${where}: "shape" has ${value.length} dims, at most 64 are allowed`);
  return (value as unknown[]).map((d) => {
    const n = typeof d === 'bigint' ? Number(d) : d;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      throw new ServingError('E_INVALID_SHAPE', `${where}: "shape" must be a list of non-negative integers, got [${value.map((x) => JSON.stringify(typeof x === 'bigint' ? Number(x) : x) ?? String(x)).join(', ')}]`);
    }
    return n;
  });
}

// ---------------------------------------------------------------------------------------------
// Replies

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function encodeJsonError(message: string): string {
  return `{"error_msg":${JSON.stringify(message)}}`;
}

/**
 * `{"instances": [{"<output>": value, ...} | {"error_msg": "..."}, ...]}` in request order,
 * written into `out` (reset first); returns its bytes, valid until `out` is reset again.
 */
export function writeJsonReply(outcomes: readonly InstanceOutcome[], out: ReplyWriter): Uint8Array {
  out.reset().ascii('{"instances":[');
  for (let i = 0; i < outcomes.length; i++) {
    if (i > 0) out.ascii(',');
    const o = outcomes[i]!;
    if (o instanceof ServingError) out.text(encodeJsonError(o.message));
    else writeInstance(o, out);
  }
  out.ascii(']}');
  return out.bytes();
}

/** The same reply as a string (tests, tools). */
export function encodeJsonReply(outcomes: readonly InstanceOutcome[]): string {
  return Buffer.from(writeJsonReply(outcomes, new ReplyWriter())).toString('utf8');
}

/** One instance's outputs as a JSON object (a Server-Sent Event's); throws when an output cannot be written. */
export function instanceJson(inst: Instance): string {
  return `{${Object.entries(inst)
    .map(([name, t]) => `${JSON.stringify(name)}:${tensorJson(t, name)}`)
    .join(',')}}`;
}

/** One instance's outputs; an output that cannot be written makes the instance an error_msg. */
function writeInstance(inst: Instance, out: ReplyWriter): void {
  const start = out.length;
  try {
    let first = true;
    for (const [name, t] of Object.entries(inst)) {
      out.text(`${first ? '{' : ','}${JSON.stringify(name)}:`);
      writeTensor(t, name, out);
      first = false;
    }
    out.ascii(first ? '{}' : '}');
  } catch (err) {
    out.truncate(start);
    out.text(encodeJsonError((err as Error).message));
  }
}

/** Numbers and bools go straight from their typed arrays into the reply bytes. */
function writeTensor(t: Tensor, name: string, out: ReplyWriter): void {
  switch (t.dtype) {
    case 'float16':
    case 'string':
    case 'bytes':
      return out.text(tensorJson(t, name));
    default:
      if (!out.typed(t.data, t.shape, t.dtype === 'bool')) out.ascii(tensorJson(t, name));
  }
}

/** One tensor as a JSON value (numbers: native/index.ts, float16: json-writer.ts; strings as JSON strings, bytes as {"b64"}). */
export function tensorJson(t: Tensor, name = 'output'): string {
  switch (t.dtype) {
    case 'float32':
      return writeFloat32Json(t.data, t.shape);
    case 'float64':
      return writeFloat64Json(t.data, t.shape);
    case 'float16':
      return writeFloat16Json(t.data, t.shape);
    case 'bool':
      return writeBoolJson(t.data, t.shape);
    case 'string':
      return writeNested(t.shape, (i) => {
        const b = t.data[i]!;
        try {
          return JSON.stringify(utf8.decode(b));
        } catch {
          throw new ServingError(
            'E_INTERNAL',
            `output '${name}' element ${i} is not valid UTF-8, which a JSON string cannot carry; ask for msgpack (Accept: application/msgpack) to get its bytes`,
          );
        }
      });
    case 'bytes':
      return writeNested(t.shape, (i) => `{"b64":"${encodeBase64(t.data[i]!)}"}`);
    default:
      return writeIntJson(t.data, t.shape);
  }
}
