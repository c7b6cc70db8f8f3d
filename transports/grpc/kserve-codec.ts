/**
 * Tensors of the Open Inference Protocol's gRPC messages (grpc_inference_service.proto) ⇄
 * engine tensors, shared by the server and the client. The raw layout and the checks of
 * plain values are the v2 core's (transports/kserve/raw.ts, values.ts); this module picks the
 * form and the field:
 *
 *   InferInputTensor[] + raw entries ──decodeV2Tensors──► decoded tensors (raw or typed)
 *   engine tensor ──typedContents──► InferTensorContents (the client's typed form)
 *
 * Raw form: `raw_input_contents` (`raw_output_contents`), one entry per tensor in order; when
 * present no tensor may also set `contents`. Numeric raw bytes are viewed in place when
 * aligned for their element type (copied otherwise); BYTES elements are views. Typed form:
 * the repeated field of the datatype only (FP16 and BF16 have none: raw only). Every check
 * throws a ServingError (E_INVALID_ARGUMENT, E_INVALID_SHAPE or E_INVALID_DTYPE: gRPC
 * INVALID_ARGUMENT) naming the tensor.
 */
import { ServingError } from '../../engine/errors.js';
import { type Tensor, elementCount } from '../../engine/tensor.js';
import { type V2Datatype, fromV2Datatype, toV2Datatype } from '../kserve/datatypes.js';
import { tensorFromRaw } from '../kserve/raw.js';
import { tensorFromValues } from '../kserve/values.js';
import type { V2Parameter, V2Parameters } from '../kserve/infer.js';
import type { WireInferParameter, WireInferParameters, WireInferTensor, WireInferTensorContents, WireLong } from './proto.js';

/** The response parameter naming the actorserve error code of a failed ModelStreamInfer request. */
export const STREAM_ERROR_CODE_PARAMETER = 'actorserve-error-code';

/** A tensor of a v2 message, decoded. */
export interface DecodedV2Tensor {
  readonly name: string;
  readonly datatype: V2Datatype;
  readonly shape: readonly number[];
  readonly tensor: Tensor;
}

type ContentsField = keyof WireInferTensorContents;

/** The typed-contents field of each datatype (none for FP16 and BF16: raw only). */
const CONTENTS_FIELD: { readonly [K in V2Datatype]?: ContentsField } = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

const ALL_FIELDS: readonly ContentsField[] = [
  'bool_contents',
  'int_contents',
  'int64_contents',
  'uint_contents',
  'uint64_contents',
  'fp32_contents',
  'fp64_contents',
  'bytes_contents',
];

function invalid(message: string): ServingError {
  return new ServingError('E_INVALID_ARGUMENT', message);
}

/** True when the contents message holds at least one value. */
export function hasContents(c: WireInferTensorContents | null | undefined): boolean {
  if (!c) return false;
  for (const f of ALL_FIELDS) if ((c[f]?.length ?? 0) > 0) return true;
  return false;
}

/** A wire shape (int64 as decimal strings or numbers) as dims; throws E_INVALID_SHAPE on a negative, fractional or huge dim. */
export function shapeOf(wire: readonly WireLong[] | undefined, where: string): number[] {
  const shape = (wire ?? []).map(Number);
  elementCount(shape, where);
  return shape;
}

/**
 * The tensors of a request's `inputs` (or a reply's `outputs`), their values in `raw` (one
 * entry per tensor, in order) when it is non-empty, else in each tensor's `contents`. `what`
 * is 'input' or 'output' (messages). Mixing the forms, a raw entry count that is not the
 * tensor count, a missing or repeated name, an unknown datatype, or a value count or byte
 * size that does not fit the shape all throw.
 */
export function decodeV2Tensors(tensors: readonly WireInferTensor[], raw: readonly Uint8Array[], what: 'input' | 'output'): DecodedV2Tensor[] {
  const rawField = what === 'input' ? 'raw_input_contents' : 'raw_output_contents';
  if (raw.length > 0 && raw.length !== tensors.length) {
    throw invalid(
      `${rawField} holds ${raw.length} entr${raw.length === 1 ? 'y' : 'ies'} for ${tensors.length} ${what}${tensors.length === 1 ? '' : 's'}; give one per ${what}, in the order of ${what}s`,
    );
  }
  const seen = new Set<string>();
  return tensors.map((t, i): DecodedV2Tensor => {
    const name = t.name ?? '';
    const where = `${what} '${name}'`;
    if (name.length === 0) throw invalid(`${what} ${i} has no name`);
    if (seen.has(name)) throw invalid(`${where} is given twice`);
    seen.add(name);
    const dtype = fromV2Datatype(t.datatype ?? '', where);
    const datatype = toV2Datatype(dtype);
    const shape = shapeOf(t.shape, where);
    if (raw.length > 0) {
      if (hasContents(t.contents)) {
        throw invalid(`${where} sets contents while the message uses ${rawField}; send every ${what} in one form (raw or typed), not both`);
      }
      return { name, datatype, shape, tensor: tensorFromRaw(dtype, shape, raw[i]!, where) };
    }
    return { name, datatype, shape, tensor: fromContents(datatype, shape, t.contents ?? {}, where, rawField) };
  });
}

/** Typed contents → a tensor: the datatype's field only, product(shape) values, each in range. */
function fromContents(datatype: V2Datatype, shape: readonly number[], c: WireInferTensorContents, where: string, rawField: string): Tensor {
  const field = CONTENTS_FIELD[datatype];
  const dtype = fromV2Datatype(datatype);
  if (field === undefined) {
    if (elementCount(shape, where) === 0 && !hasContents(c)) return tensorFromRaw(dtype, shape, new Uint8Array(0), where);
    throw invalid(`${where}: ${datatype} has no typed contents field; send it in ${rawField}`);
  }
  for (const f of ALL_FIELDS) {
    if (f !== field && (c[f]?.length ?? 0) > 0) throw invalid(`${where}: a ${datatype} tensor carries its values in contents.${field}, not in contents.${f}`);
  }
  return tensorFromValues(dtype, shape, c[field] ?? [], `${where} (contents.${field})`);
}

/** A tensor in the typed form (FP16 has none: E_INVALID_DTYPE). */
export function typedContents(t: Tensor, where: string): WireInferTensorContents {
  const datatype = toV2Datatype(t.dtype);
  const field = CONTENTS_FIELD[datatype];
  if (field === undefined) throw new ServingError('E_INVALID_DTYPE', `${where}: ${datatype} has no typed contents field; send it raw`);
  switch (t.dtype) {
    case 'bool':
      return { bool_contents: Array.from(t.data, (b) => b !== 0) };
    case 'int64':
    case 'uint64':
      return { [field]: Array.from(t.data, (v) => v.toString()) };
    case 'string':
    case 'bytes':
      return { bytes_contents: [...t.data] };
    default:
      return { [field]: Array.from(t.data as ArrayLike<number>) };
  }
}

// ---- parameters ----

/** One parameter's value (64-bit integers arrive as decimal strings: numbers when exact, else kept as text). */
function parameterValue(p: WireInferParameter): V2Parameter | undefined {
  switch (p.parameter_choice) {
    case 'bool_param':
      return p.bool_param ?? false;
    case 'string_param':
      return p.string_param ?? '';
    case 'double_param':
      return p.double_param ?? 0;
    case 'int64_param':
    case 'uint64_param': {
      const text = String(p[p.parameter_choice] ?? '0');
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : text;
    }
    default:
      return undefined; // no member set: the parameter carries nothing
  }
}

export function decodeParameters(wire: WireInferParameters | undefined): V2Parameters | undefined {
  if (!wire) return undefined;
  const out: Record<string, V2Parameter> = {};
  let any = false;
  for (const [name, p] of Object.entries(wire)) {
    const v = parameterValue(p);
    if (v === undefined) continue;
    out[name] = v;
    any = true;
  }
  return any ? out : undefined;
}

export function encodeParameters(params: V2Parameters | undefined): WireInferParameters {
  const out: WireInferParameters = {};
  for (const [name, v] of Object.entries(params ?? {})) {
    if (typeof v === 'boolean') out[name] = { bool_param: v };
    else if (typeof v === 'string') out[name] = { string_param: v };
    else if (Number.isSafeInteger(v)) out[name] = { int64_param: v };
    else out[name] = { double_param: v };
  }
  return out;
}
