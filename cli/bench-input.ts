/**
 * Request payloads for `actorserve bench`, encoded once before the load starts: the REST body
 * (the input JSON as it is, or converted to msgpack), the gRPC `MSService/Predict` request,
 * the `PredictStream` request (without its id, which each send appends) and the Open Inference
 * Protocol's `ModelInfer` request (kserve: the instances stacked along a leading batch dim,
 * in raw_input_contents).
 */
import { Packr } from 'msgpackr';
import type { DType } from '../engine/dtypes.js';
import { parseInstances } from '../native/index.js';
import { toTensor } from '../transports/rest/json-codec.js';
import { encodeTensor } from '../transports/grpc/codec.js';
import { protos, type WireInstance, type WireServableSpec, type WireTensor } from '../transports/grpc/proto.js';
import type { Instance, Tensor } from '../engine/tensor.js';
import { toV2Datatype } from '../transports/kserve/datatypes.js';
import { stackBatch } from '../transports/kserve/batch.js';
import { tensorToRaw } from '../transports/kserve/raw.js';

export type Protocol = 'rest' | 'grpc' | 'grpc-stream' | 'kserve';
export const PROTOCOLS: readonly Protocol[] = ['rest', 'grpc', 'grpc-stream', 'kserve'];

/** The model name of a servable method in the Open Inference Protocol: `<servable>.<method>`. */
export function v2ModelName(spec: Spec): string {
  return `${spec.servable}.${spec.method}`;
}

/** The README's example body: one `add` instance of two [2, 2] float32 tensors. */
export const ADD_EXAMPLE_BODY = '{"instances":{"x1":[[1.0, 1.0], [1.0, 1.0]], "x2":[[1.0, 1.0], [1.0, 1.0]]}}';

/** The built-in input for a servable method, when there is one. */
export function defaultInput(servable: string, method: string): string | undefined {
  if (servable === 'add' && (method === 'add_common' || method === 'add_cast')) return ADD_EXAMPLE_BODY;
  return undefined;
}

export interface Spec {
  readonly servable: string;
  readonly method: string;
  readonly version: number;
}

export interface Payload {
  /** Bytes sent per request (for gRPC streams: without the id field). */
  readonly bytes: Uint8Array;
  /** REST only: request headers besides content-length. */
  readonly headers: Record<string, string>;
  /** REST only: the request path. */
  readonly path: string;
  /** Instances in one request (requests/s × this = instances/s). */
  readonly instances: number;
}

/** An input the user gave that cannot be encoded: exit 2 with the reason. */
export class InputError extends Error {}

/** The REST predict path, MindSpore's form, with each segment percent-encoded. */
export function restPath(spec: Spec): string {
  const version = spec.version > 0 ? `/version/${spec.version}` : '';
  return `/model/${encodeURIComponent(spec.servable)}${version}:${encodeURIComponent(spec.method)}`;
}

/** Counts the instances of a `{"instances": ...}` JSON body (a list, or one object). */
function countInstances(parsed: unknown, where: string): number {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !('instances' in parsed)) {
    throw new InputError(`${where} must be a JSON object with an "instances" key`);
  }
  const instances = (parsed).instances;
  if (Array.isArray(instances)) {
    if (instances.length === 0) throw new InputError(`${where}: "instances" is an empty list`);
    return instances.length;
  }
  if (typeof instances === 'object' && instances !== null) return 1;
  throw new InputError(`${where}: "instances" must be an object or a list of objects`);
}

export interface PayloadOptions {
  /** REST: send msgpack and ask for msgpack replies. */
  readonly msgpack?: boolean;
  /** gRPC: dtype of plain JSON numbers (b64 objects carry their own). Default float32. */
  readonly numbersDtype?: DType;
  /** Names the input in error messages. */
  readonly where?: string;
}

/** Encodes `json` (a `{"instances": ...}` body) for `protocol`. Throws InputError. */
export function buildPayload(protocol: Protocol, json: Uint8Array, spec: Spec, options: PayloadOptions = {}): Payload {
  const where = options.where ?? 'the input';
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8'));
  } catch (err) {
    throw new InputError(`${where} is not valid JSON: ${(err as Error).message}`);
  }
  const instances = countInstances(parsed, where);
  if (protocol === 'rest') {
    if (options.msgpack) {
      const bytes = new Packr({ useRecords: false, variableMapSize: true }).pack({ instances: (parsed as { instances: unknown }).instances });
      return { bytes, instances, path: restPath(spec), headers: { 'content-type': 'application/msgpack', accept: 'application/msgpack' } };
    }
    return { bytes: json, instances, path: restPath(spec), headers: { 'content-type': 'application/json' } };
  }
  const tensors = instanceTensors(json, options.numbersDtype ?? 'float32', where);
  if (protocol === 'kserve') return { bytes: v2Request(tensors, spec, where), instances, path: '', headers: {} };
  const wire: WireInstance[] = tensors.map((inst) => {
    const items: Record<string, WireTensor> = {};
    for (const [name, t] of Object.entries(inst)) items[name] = encodeTensor(t);
    return { items };
  });
  const servable_spec: WireServableSpec = { name: spec.servable, method_name: spec.method, version_number: spec.version };
  const p = protos();
  const bytes =
    protocol === 'grpc'
      ? p.predict.requestSerialize({ servable_spec, instances: wire })
      : p.predictStream.requestSerialize({ servable_spec, instances: wire });
  return { bytes, instances, path: '', headers: {} };
}

/** JSON instances → tensors, with REST's parsing rules and `numbersDtype` for plain numbers. */
function instanceTensors(json: Uint8Array, numbersDtype: DType, where: string): Instance[] {
  let request;
  try {
    request = parseInstances(json);
  } catch (err) {
    throw new InputError(`${where}: ${(err as Error).message}`);
  }
  return request.instances.map((inst, i) => {
    const out: Instance = {};
    for (const [name, value] of Object.entries(inst)) {
      try {
        out[name] = toTensor(value, value.kind === 'numbers' ? numbersDtype : undefined, `instance ${i}, input '${name}'`);
      } catch (err) {
        throw new InputError(`${where}: ${(err as Error).message}`);
      }
    }
    return out;
  });
}

/** A ModelInferRequest: each input's instances stacked along a new leading (batch) dim, raw. */
function v2Request(instances: readonly Instance[], spec: Spec, where: string): Uint8Array {
  const names = Object.keys(instances[0]!);
  const inputs = [];
  const raw = [];
  for (const name of names) {
    let t: Tensor;
    try {
      t = stackBatch(
        instances.map((inst, i) => {
          const part = inst[name];
          if (!part) throw new InputError(`${where}: instance ${i} has no input '${name}' (kserve sends the instances as one batch: every instance needs the same inputs)`);
          return part;
        }),
        `input '${name}'`,
      );
    } catch (err) {
      throw err instanceof InputError ? err : new InputError(`${where}: ${(err as Error).message.replace(/v2 output tensor/, 'v2 tensor')}`);
    }
    inputs.push({ name, datatype: toV2Datatype(t.dtype), shape: [...t.shape] });
    raw.push(tensorToRaw(t));
  }
  return protos().kserve.ModelInfer.requestSerialize({
    model_name: v2ModelName(spec),
    model_version: spec.version > 0 ? String(spec.version) : '',
    inputs,
    raw_input_contents: raw,
  });
}
