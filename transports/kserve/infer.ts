/**
 * One KServe v2 inference on the facade, with tensors already decoded by the transport (REST
 * JSON or binary, gRPC typed or raw contents):
 *
 *   1. the model name and version resolve through `engine.lookup` (models.ts), so metrics and
 *      the access log count the request under the transport like any other
 *   2. inputs are checked against the method: every input once, no unknown name, the datatype
 *      the method takes (BYTES is relabelled string where the method takes strings)
 *   3. for a batched method (engine/inference.ts MethodLayout) each batched input's leading dim
 *      is split into instances; every instance gets the unbatched inputs whole. A method that
 *      is not batched runs the tensors whole as one instance
 *   4. `target.inferEach` runs them; any instance's error fails the whole request with that
 *      error's code (so its HTTP / gRPC status). A streaming method's partial results come
 *      joined, and its stream stage gets the request's parameters (less Triton's reserved
 *      names) as `ctx.parameters`
 *   5. outputs are stacked back along the leading dim (batched) or taken as they are, and the
 *      requested ones returned in the requested order (an unknown name is 400 before anything
 *      runs); `id` and `parameters` are echoed
 *
 * Errors are ServingErrors; transports map `code` to a status (ERROR_CODES).
 */
import type { CancelSignal } from '../../engine/cancellation.js';
import { ServingError, toServingError } from '../../engine/errors.js';
import { type SequenceRequest, sequenceFromParameters } from '../../engine/sequence.js';
import type { Instance, Tensor } from '../../engine/tensor.js';
import type { MethodTarget, ServingEngine, TargetInferOptions, Transport } from '../../facade/engine.js';
import { batchElement, stackBatch } from './batch.js';
import { type V2Datatype, fromV2Datatype, toV2Datatype } from './datatypes.js';
import { layoutOf, parseV2Version, v2Target } from './models.js';

/** A request or response parameter value (gRPC's int64/uint64 parameters arrive as numbers or decimal strings). */
export type V2Parameter = string | number | boolean;
export type V2Parameters = Readonly<Record<string, V2Parameter>>;

export interface V2InputTensor {
  readonly name: string;
  readonly datatype: V2Datatype;
  readonly shape: readonly number[];
  /** The decoded data: its dtype must be `datatype`'s and its shape `shape`. */
  readonly tensor: Tensor;
}

export interface V2InferRequest {
  readonly model: string;
  /** Decimal string; absent or '' = the newest loaded version. */
  readonly version?: string;
  readonly id?: string;
  readonly inputs: readonly V2InputTensor[];
  /** Names of the outputs to return, in this order; absent = every output in the method's order. */
  readonly outputs?: readonly string[];
  readonly parameters?: V2Parameters;
}

export interface V2OutputTensor {
  readonly name: string;
  readonly datatype: V2Datatype;
  readonly shape: readonly number[];
  readonly tensor: Tensor;
}

export interface V2InferResponse {
  /** The model name as the request gave it. */
  readonly model_name: string;
  /** The version that ran. */
  readonly model_version: string;
  readonly id?: string;
  readonly outputs: readonly V2OutputTensor[];
  readonly parameters?: V2Parameters;
}

export interface V2InferContext {
  readonly transport: Transport;
  readonly requestId?: string;
  /** Aborting it cancels the request (the client went away). */
  readonly signal?: CancelSignal;
  /** Milliseconds the request may take; absent: the servable's default. */
  readonly deadlineMs?: number;
}

/** Runs one v2 inference (see the header); rejects with a ServingError. */
export async function inferV2(engine: ServingEngine, request: V2InferRequest, context: V2InferContext): Promise<V2InferResponse> {
  const lookup = { transport: context.transport, ...(context.requestId !== undefined ? { requestId: context.requestId } : {}) };
  let version: number;
  try {
    version = parseV2Version(request.version);
  } catch (err) {
    engine.countRefused(context.transport, toServingError(err).code);
    throw err;
  }
  const target = v2Target(engine, request.model, version, lookup); // counts its own refusal
  let instances: Instance[];
  let outputs: readonly string[];
  try {
    outputs = requestedOutputs(target, request);
    instances = toInstances(target, request);
  } catch (err) {
    engine.countRefused(context.transport, toServingError(err).code);
    throw err;
  }
  let sequence: SequenceRequest | undefined;
  try {
    sequence = sequenceFromParameters(request.parameters);
  } catch (err) {
    engine.countRefused(context.transport, toServingError(err).code);
    throw err;
  }
  const options: TargetInferOptions = { transport: context.transport };
  if (sequence) options.sequence = sequence;
  if (target.info.stream && request.parameters !== undefined) options.parameters = stageParameters(request.parameters);
  if (context.requestId !== undefined) options.requestId = context.requestId;
  if (context.signal !== undefined) options.signal = context.signal;
  if (context.deadlineMs !== undefined) options.deadlineMs = context.deadlineMs;
  const outcomes = await target.inferEach(instances, options);
  const results = outcomes.map((o, j) => {
    if (o instanceof ServingError) throw instanceError(outcomes, o, j);
    return o;
  });
  const batched = layoutOf(target.info).batched;
  return {
    model_name: request.model,
    model_version: String(target.version),
    ...(request.id !== undefined ? { id: request.id } : {}),
    outputs: outputs.map((name): V2OutputTensor => {
      const what = `output '${name}'`;
      const parts = results.map((r) => r[name] ?? missing(what));
      const tensor = batched ? stackBatch(parts, what) : parts[0]!;
      return { name, datatype: toV2Datatype(tensor.dtype), shape: tensor.shape, tensor };
    }),
    ...(request.parameters !== undefined ? { parameters: request.parameters } : {}),
  };
}

/** Triton's reserved request parameters: read by the server, never handed to a stage. */
const RESERVED = new Set(['sequence_id', 'sequence_start', 'sequence_end', 'priority', 'timeout', 'headers', 'binary_data_output']);

/** A streaming method's stage parameters (`ctx.parameters`): the request's, less the reserved ones. */
function stageParameters(parameters: V2Parameters): V2Parameters {
  const out: Record<string, V2Parameter> = {};
  for (const [name, value] of Object.entries(parameters)) if (!RESERVED.has(name) && !name.startsWith('triton_')) out[name] = value;
  return out;
}

function missing(what: string): never {
  throw new ServingError('E_INTERNAL', `${what} is missing from the method's result`);
}

/** The error of a failed instance, naming its batch element when others failed differently or succeeded. */
function instanceError(outcomes: readonly unknown[], e: ServingError, j: number): ServingError {
  if (outcomes.length === 1 || outcomes.every((o) => o instanceof ServingError && o.message === e.message)) return e;
  return new ServingError(e.code, `batch element ${j}: ${e.message}`);
}

function requestedOutputs(target: MethodTarget, request: V2InferRequest): readonly string[] {
  const all = target.info.outputs;
  if (request.outputs === undefined) return all;
  const seen = new Set<string>();
  for (const name of request.outputs) {
    if (!all.includes(name)) {
      throw new ServingError('E_INVALID_ARGUMENT', `model ${JSON.stringify(request.model)} has no output ${JSON.stringify(name)} (outputs: ${all.join(', ')})`);
    }
    if (seen.has(name)) throw new ServingError('E_INVALID_ARGUMENT', `output ${JSON.stringify(name)} is requested twice`);
    seen.add(name);
  }
  return request.outputs;
}

/** Steps 2 and 3 of the header. */
function toInstances(target: MethodTarget, request: V2InferRequest): Instance[] {
  const { info } = target;
  const layout = layoutOf(info);
  const model = JSON.stringify(request.model);
  const byName = new Map<string, V2InputTensor>();
  for (const input of request.inputs) {
    if (byName.has(input.name)) throw new ServingError('E_INVALID_ARGUMENT', `input ${JSON.stringify(input.name)} is given twice`);
    byName.set(input.name, input);
  }
  const names = info.inputs.map((i) => i.name);
  for (const name of byName.keys()) {
    if (!names.includes(name)) throw new ServingError('E_EXTRA_INPUT', `model ${model} has no input ${JSON.stringify(name)} (inputs: ${names.join(', ')})`);
  }
  const tensors = info.inputs.map((declared, i): Tensor => {
    const input = byName.get(declared.name);
    if (input === undefined) throw new ServingError('E_MISSING_INPUT', `model ${model} needs input ${JSON.stringify(declared.name)} (inputs: ${names.join(', ')})`);
    return checkedInput(input, layout.inputs[i]?.dtype, model);
  });
  if (!layout.batched) return [Object.fromEntries(names.map((n, i) => [n, tensors[i]!]))];

  let n: number | undefined;
  let from = '';
  tensors.forEach((t, i) => {
    if (!layout.inputs[i]!.batched) return;
    if (t.shape.length === 0) {
      throw new ServingError('E_INVALID_SHAPE', `input '${names[i]}' has shape [], but model ${model} is batched: send shape [N, ...] for N instances`);
    }
    if (n === undefined) [n, from] = [t.shape[0]!, names[i]!];
    else if (t.shape[0] !== n) {
      throw new ServingError('E_INVALID_SHAPE', `input '${names[i]}' has batch size ${t.shape[0]}, input '${from}' has ${n}: the leading dims of batched inputs must agree`);
    }
  });
  const count = n ?? 1;
  if (count === 0) throw new ServingError('E_NO_INSTANCES', `input '${from}' has batch size 0: the request holds no instances`);
  const instances = new Array<Instance>(count);
  for (let j = 0; j < count; j++) {
    const instance: Instance = {};
    tensors.forEach((t, i) => {
      instance[names[i]!] = layout.inputs[i]!.batched ? batchElement(t, j) : t;
    });
    instances[j] = instance;
  }
  return instances;
}

/** The input's tensor, checked against its datatype, shape and the dtype the method takes. */
function checkedInput(input: V2InputTensor, wanted: Tensor['dtype'] | undefined, model: string): Tensor {
  const t = input.tensor;
  const what = `input '${input.name}'`;
  const dtype = fromV2Datatype(input.datatype, what);
  const binary = t.dtype === 'bytes' || t.dtype === 'string';
  if (dtype === 'bytes' ? !binary : t.dtype !== dtype) {
    throw new ServingError('E_INVALID_ARGUMENT', `${what}: datatype ${input.datatype} does not match its data (${t.dtype})`);
  }
  if (t.shape.length !== input.shape.length || t.shape.some((d, i) => d !== input.shape[i])) {
    throw new ServingError('E_INVALID_ARGUMENT', `${what}: shape [${input.shape.join(', ')}] does not match its data's [${t.shape.join(', ')}]`);
  }
  if (wanted === undefined || wanted === t.dtype) return t;
  if (binary && (wanted === 'string' || wanted === 'bytes')) return { dtype: wanted, shape: t.shape, data: t.data };
  throw new ServingError('E_INVALID_DTYPE', `${what} of model ${model} takes ${toV2Datatype(wanted)}, got ${input.datatype}`);
}
