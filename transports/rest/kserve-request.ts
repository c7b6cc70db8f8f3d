/**
 * KServe v2 inference request bodies over HTTP: JSON, and the binary tensor data extension.
 *
 *   JSON           {"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "parameters"?,
 *                  "data"}], "outputs"?: [{"name", "parameters"?}]}; `data` flat or nested
 *                  (row-major; only the element count is checked against the shape); values as
 *                  transports/kserve/values.ts takes them (FP16: JSON numbers, converted)
 *   binary         header `Inference-Header-Content-Length: <n>`: the first n bytes are the JSON,
 *                  the rest the binary chunks of the inputs whose parameters carry
 *                  `binary_data_size` (and no `data`), concatenated in the order of `inputs`;
 *                  chunks are viewed where aligned (transports/kserve/raw.ts)
 *   raw shortcut   `Inference-Header-Content-Length: 0`: the whole body is the one input of a
 *                  one-input method, one instance: its datatype and shape come from the method
 *                  (at most one dynamic dim, sized from the byte count; BYTES: one element);
 *                  every output comes back binary
 *
 * Output selection: request parameter `binary_data_output: true` makes every output binary;
 * an output's own `binary_data` parameter overrides it. `binary_data_output` is a transport
 * setting and is not echoed; the other request parameters are.
 *
 * Unknown keys are ignored (clients add their own); a malformed body is E_INVALID_ARGUMENT (400).
 */
import { ServingError } from '../../engine/errors.js';
import { isNumericDType, bytesPerElement } from '../../engine/dtypes.js';
import type { Tensor } from '../../engine/tensor.js';
import type { MethodInfo } from '../../facade/engine.js';
import { type V2Datatype, fromV2Datatype, toV2Datatype } from '../kserve/datatypes.js';
import type { V2InputTensor, V2Parameter, V2Parameters } from '../kserve/infer.js';
import { layoutOf } from '../kserve/models.js';
import { tensorFromRaw } from '../kserve/raw.js';
import { tensorFromValues } from '../kserve/values.js';
import { MAX_DEPTH, badRequest, preview } from './parsed-value.js';

/** A request as the REST transport decoded it, before the model is resolved. */
export interface V2HttpRequest {
  readonly id?: string;
  readonly inputs: readonly V2InputTensor[];
  readonly outputs?: readonly string[];
  /** Request parameters to echo (without `binary_data_output`). */
  readonly parameters?: V2Parameters;
  /** Per returned output name: whether it is sent binary (absent: `binaryDefault`). */
  readonly binaryOutputs: ReadonlyMap<string, boolean>;
  readonly binaryDefault: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The Inference-Header-Content-Length header: '' (absent) → undefined; else a byte count. */
export function headerLength(text: string): number | undefined {
  if (text === '') return undefined;
  if (!/^\d{1,16}$/.test(text)) throw badRequest(`the Inference-Header-Content-Length header must be a byte count, got ${JSON.stringify(preview(text))}`);
  return Number(text);
}

/** Decodes a JSON or JSON + binary body (not the raw shortcut: see decodeRawRequest). */
export function decodeV2Request(body: Uint8Array, jsonLength: number | undefined): V2HttpRequest {
  const split = jsonLength ?? body.byteLength;
  if (split > body.byteLength) {
    throw badRequest(`Inference-Header-Content-Length is ${split}, but the body has only ${body.byteLength} bytes`);
  }
  const hint = jsonLength === undefined ? '; a body with binary tensor data needs the Inference-Header-Content-Length header' : '';
  let text: string;
  try {
    text = utf8.decode(body.subarray(0, split));
  } catch {
    throw badRequest(`the request JSON is not valid UTF-8${hint}`);
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body is not valid JSON (${(err as Error).message})${hint}`);
  }
  if (!isObject(root)) throw badRequest('the request body must be a JSON object {"inputs": [...]}');
  const id = root['id'];
  if (id !== undefined && typeof id !== 'string') throw badRequest(`"id" must be a string, got ${kindOf(id)}`);
  const params = readParameters(root['parameters'], 'request "parameters"');
  const binaryDefault = readFlag(params, 'binary_data_output', 'request parameter');
  const inputs = root['inputs'];
  if (!Array.isArray(inputs) || inputs.length === 0) throw badRequest('"inputs" must be a non-empty array of tensors');
  const binary = { body, at: split };
  const tensors = inputs.map((input, i) => readInput(input, i, binary));
  if (binary.at !== body.byteLength) {
    throw badRequest(`the body holds ${body.byteLength - binary.at} bytes after the inputs' binary data (binary_data_size does not add up to the body)`);
  }
  const { outputs, binaryOutputs } = readOutputs(root['outputs']);
  const echoed = params === undefined ? undefined : withoutKey(params, 'binary_data_output');
  return {
    ...(id !== undefined ? { id } : {}),
    inputs: tensors,
    ...(outputs !== undefined ? { outputs } : {}),
    ...(echoed !== undefined ? { parameters: echoed } : {}),
    binaryOutputs,
    binaryDefault: binaryDefault ?? false,
  };
}

function readInput(value: unknown, index: number, binary: { body: Uint8Array; at: number }): V2InputTensor {
  const where = `inputs[${index}]`;
  if (!isObject(value)) throw badRequest(`${where} must be an object {"name", "shape", "datatype", "data"}`);
  const name = value['name'];
  if (typeof name !== 'string' || name === '') throw badRequest(`${where}: "name" must be a non-empty string`);
  const what = `input '${name}'`;
  const datatype = value['datatype'];
  if (typeof datatype !== 'string') throw badRequest(`${what}: "datatype" must be a string such as "FP32"`);
  const dtype = fromV2Datatype(datatype, what);
  const shape = readShape(value['shape'], what);
  const params = readParameters(value['parameters'], `${what} "parameters"`);
  const size = params?.['binary_data_size'];
  const data = value['data'];
  let tensor: Tensor;
  if (size !== undefined) {
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw badRequest(`${what}: binary_data_size must be a byte count, got ${JSON.stringify(size)}`);
    if (data !== undefined) throw badRequest(`${what} has both "data" and binary_data_size: send one`);
    if (binary.at + size > binary.body.byteLength) {
      throw badRequest(`${what}: binary_data_size ${size} runs past the end of the body (${binary.body.byteLength - binary.at} bytes left)`);
    }
    tensor = tensorFromRaw(dtype, shape, binary.body.subarray(binary.at, binary.at + size), what);
    binary.at += size;
  } else {
    if (data === undefined) throw badRequest(`${what} has no "data" (nor a binary_data_size parameter)`);
    // Flat data (what most clients send) is used as parsed: copying 1024 numbers costs as much as converting them.
    let flat: readonly unknown[];
    if (Array.isArray(data) && !data.some(Array.isArray)) flat = data;
    else {
      const out: unknown[] = [];
      flatten(data, out, 0, what);
      flat = out;
    }
    tensor = tensorFromValues(dtype, shape, flat, what);
  }
  return { name, datatype: datatype as V2Datatype, shape, tensor };
}

function readShape(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || !value.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new ServingError('E_INVALID_SHAPE', `${what}: "shape" must be an array of non-negative integers, got ${preview(JSON.stringify(value) ?? 'nothing', 60)}`);
  }
  return value as number[];
}

/** Nested lists → their elements in row-major order. */
function flatten(value: unknown, out: unknown[], depth: number, what: string): void {
  if (!Array.isArray(value)) {
    if (depth === 0) throw badRequest(`${what}: "data" must be an array (flat or nested), got ${kindOf(value)}`);
    out.push(value);
    return;
  }
  if (depth >= MAX_DEPTH) throw badRequest(`${what}: "data" nests deeper than ${MAX_DEPTH} levels`);
  for (const v of value) {
    if (Array.isArray(v)) flatten(v, out, depth + 1, what);
    else out.push(v);
  }
}

function readOutputs(value: unknown): { outputs?: string[]; binaryOutputs: Map<string, boolean> } {
  const binaryOutputs = new Map<string, boolean>();
  if (value === undefined) return { binaryOutputs };
  if (!Array.isArray(value)) throw badRequest('"outputs" must be an array of {"name", "parameters"?}');
  const outputs = value.map((o, i) => {
    const where = `outputs[${i}]`;
    if (!isObject(o) || typeof o['name'] !== 'string') throw badRequest(`${where} must be an object with a string "name"`);
    const name = o['name'];
    const params = readParameters(o['parameters'], `output '${name}' "parameters"`);
    if (params?.['classification'] !== undefined) throw badRequest(`output '${name}': the classification extension is not supported`);
    const flag = readFlag(params, 'binary_data', `output '${name}' parameter`);
    if (flag !== undefined) binaryOutputs.set(name, flag);
    return name;
  });
  return { outputs, binaryOutputs };
}

function readParameters(value: unknown, where: string): Record<string, V2Parameter> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw badRequest(`${where} must be an object of string, number or boolean values`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw badRequest(`${where}: ${preview(k)} must be a string, number or boolean, got ${kindOf(v)}`);
    }
  }
  return value as Record<string, V2Parameter>;
}

function readFlag(params: Readonly<Record<string, V2Parameter>> | undefined, key: string, where: string): boolean | undefined {
  const v = params?.[key];
  if (v === undefined || typeof v === 'boolean') return v;
  throw badRequest(`${where} ${key} must be true or false, got ${JSON.stringify(v)}`);
}

function withoutKey(params: Record<string, V2Parameter>, key: string): V2Parameters | undefined {
  if (!Object.hasOwn(params, key)) return params;
  const rest = { ...params };
  delete rest[key];
  return Object.keys(rest).length > 0 ? rest : undefined;
}

/**
 * The raw shortcut (Inference-Header-Content-Length: 0): the body is the method's one input,
 * one instance. Numeric: the input's dims with its one dynamic dim sized from the byte count.
 * BYTES (or an input that takes any datatype: only bytes need none): one element.
 */
export function decodeRawRequest(body: Uint8Array, info: MethodInfo, model: string): V2HttpRequest {
  const layout = layoutOf(info);
  if (info.inputs.length !== 1) {
    throw badRequest(`a raw binary body (Inference-Header-Content-Length: 0) needs a model with one input; "${model}" has ${info.inputs.length} (${info.inputs.map((i) => i.name).join(', ')})`);
  }
  const name = info.inputs[0]!.name;
  const what = `input '${name}' of "${model}"`;
  const spec = layout.inputs[0]!;
  const dtype = spec.dtype ?? 'bytes';
  const batched = layout.batched && spec.batched;
  const dynamic = (d: number | string): boolean => typeof d !== 'number' || d < 0;
  let shape: number[];
  if (!isNumericDType(dtype)) {
    const dims = spec.dims?.map((d) => (dynamic(d) ? 1 : (d as number))) ?? (batched ? [] : [1]);
    if (dims.some((d) => d !== 1)) throw badRequest(`a raw binary body is one BYTES element, but ${what} takes shape [${spec.dims!.join(', ')}]: send JSON with binary_data_size`);
    shape = dims;
  } else {
    const dims = spec.dims ?? [-1];
    const count = dims.filter(dynamic).length;
    if (count > 1) throw badRequest(`a raw binary body fits only an input with at most one dynamic dim; ${what} has ${count}: send JSON with binary_data_size`);
    const step = dims.reduce<number>((n, d) => (dynamic(d) ? n : n * (d as number)), 1) * bytesPerElement(dtype);
    const inferred = count === 0 || step === 0 ? 0 : body.byteLength / step;
    if (!Number.isInteger(inferred)) throw badRequest(`a raw binary body of ${body.byteLength} bytes does not fit ${what} (${toV2Datatype(dtype)}, ${step} bytes per step of its dynamic dim)`);
    shape = dims.map((d) => (dynamic(d) ? inferred : (d as number)));
  }
  if (batched) shape = [1, ...shape];
  const tensor = isNumericDType(dtype) ? tensorFromRaw(dtype, shape, body, `input '${name}'`) : { dtype, shape, data: [body] };
  return { inputs: [{ name, datatype: toV2Datatype(dtype), shape, tensor }], binaryOutputs: new Map(), binaryDefault: true };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
