/**
 * Stateful sequences, the domain part: what a model declares (its state tensors), what a
 * request carries (a sequence id and start/end flags), and the pure tensor work the device
 * actor does with state (stacking sequences' states along a state's batch axis and cutting a
 * batch's state output back into sequences). docs/sequences.md describes the feature.
 */
import { type DType, type NumericArray, type NumericDType, TYPED_ARRAY, isNumericDType } from './dtypes.js';
import { ServingError } from './errors.js';

/** One state tensor of a stateful model: the model input it feeds and the output that updates it. */
export interface SequenceStateOptions {
  /** The model input that takes the state (the previous step's output; zeros at the start). */
  input: string;
  /** The model output that becomes the state of the next step. */
  output: string;
  /** Which axis of the state tensor is the batch axis (default 0; an RNN's h is [layers, batch, hidden]: 1). */
  batchAxis?: number;
  /**
   * The state at a sequence's start: 'zeros' (the default), or a NumPy `.npy` file
   * (`{ file: 'h0.npy' }`, a path relative to the model's version folder, like model files) of
   * the state's dtype and dims, without the batch axis or with a batch axis of 1.
   */
  initial?: StateInitial;
}

/** A state's value at a sequence's start (`SequenceStateOptions.initial`). */
export type StateInitial = 'zeros' | { readonly file: string };

/** Whether `v` is a StateInitial: 'zeros', or `{ file }` with a non-empty file name and no other key. */
export function isStateInitial(v: unknown): v is StateInitial {
  if (v === 'zeros') return true;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  const file = (v as { file?: unknown }).file;
  return keys.length === 1 && typeof file === 'string' && file.length > 0;
}

/** `declareModel({ sequence })`: the model keeps state per sequence between requests. */
export interface SequenceOptions {
  /** The state tensors (at least one). */
  state: readonly SequenceStateOptions[];
  /** A sequence with no request for this long is dropped and its state freed (default 60 000 ms). */
  idleTimeoutMs?: number;
}

export interface SequenceStateDeclaration {
  readonly input: string;
  readonly output: string;
  readonly batchAxis: number;
  readonly initial: StateInitial;
}

/** A state's initial value read from its file (at load; `initial: { file }`). */
export interface StateInitialValue {
  /** The file as declared (for messages). */
  readonly file: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: NumericArray;
}

/** A state declaration as a device actor gets it: with its initial value when it comes from a file. */
export interface LoadedStateDeclaration extends SequenceStateDeclaration {
  readonly value?: StateInitialValue;
}

export interface SequenceDeclaration {
  readonly state: readonly SequenceStateDeclaration[];
  readonly idleTimeoutMs: number;
}

export const DEFAULT_SEQUENCE_IDLE_TIMEOUT_MS = 60_000;

/** What a request says about its sequence (`server.infer(..., { sequence })`). */
export interface SequenceRequest {
  /** The sequence's id: a non-empty string or an integer >= 1 (Triton: 0 and '' mean none). */
  id: string | number;
  /** The first request of the sequence: its state starts from the initial value. */
  start?: boolean;
  /** The last request: the state is freed once it has run. */
  end?: boolean;
}

/**
 * Checks a request's sequence options; returns them with the id as the registry keys it
 * (numbers and strings are distinct ids: 7 and "7" are two sequences, as in Triton).
 */
export function checkSequenceRequest(value: unknown): { readonly key: string; readonly id: string | number; readonly start: boolean; readonly end: boolean } {
  const bad = (message: string): never => {
    throw new ServingError('E_INVALID_ARGUMENT', `sequence: ${message}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('must be an object { id, start?, end? }');
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) if (key !== 'id' && key !== 'start' && key !== 'end') bad(`unknown key '${key}' (keys: id, start, end)`);
  const { id, start = false, end = false } = o;
  if (typeof start !== 'boolean') bad(`start must be a boolean, got ${JSON.stringify(start)}`);
  if (typeof end !== 'boolean') bad(`end must be a boolean, got ${JSON.stringify(end)}`);
  if (typeof id === 'string') {
    if (id.length === 0) bad('id must not be empty');
    if (id.length > 256) bad('id is longer than 256 characters');
    return { key: `s:${id}`, id, start: start as boolean, end: end as boolean };
  }
  if (typeof id === 'number' || typeof id === 'bigint') {
    const n = Number(id);
    if (!Number.isSafeInteger(n) || n < 1) bad(`a numeric id must be an integer >= 1, got ${String(id)}`);
    return { key: `n:${n}`, id: n, start: start as boolean, end: end as boolean };
  }
  return bad(`id must be a string or an integer, got ${id === undefined ? 'none' : typeof id}`);
}

/** How a sequence id reads in messages. */
export function sequenceLabel(id: string | number): string {
  return typeof id === 'string' ? JSON.stringify(id) : String(id);
}

/**
 * The shape of one sequence's state: the model's state input dims with the batch axis set to
 * 1. Every other dim must be static (the initial zeros need a size).
 */
export function stateShape(dims: readonly (number | string)[], batchAxis: number, where: string): number[] {
  if (batchAxis >= dims.length) throw new Error(`${where}: batchAxis ${batchAxis} is out of range for rank ${dims.length}`);
  return dims.map((d, i) => {
    if (i === batchAxis) return 1;
    if (typeof d !== 'number') throw new Error(`${where}: dim ${i} is dynamic ('${d}'); a state's dims other than its batch axis must be fixed`);
    return d;
  });
}

/** One state tensor of a stateful model, as a device actor feeds and keeps it. */
export interface StatePlan {
  /** Its position in the declaration (how a sequence's kept states are indexed). */
  readonly index: number;
  readonly input: string;
  readonly output: string;
  readonly axis: number;
  readonly dtype: NumericDType;
  /** One sequence's dims (batch axis 1). */
  readonly rowDims: readonly number[];
  /** The state at a sequence's start, in rowDims (undefined: zeros). */
  readonly initial: NumericArray | undefined;
}

/** How one graph (subgraph) of a stateful model runs: the inputs and outputs a batch carries, and its states. */
export interface GraphStatePlan {
  readonly batchInputs: readonly string[];
  readonly batchOutputs: readonly string[];
  /** States whose input this graph takes. */
  readonly reads: readonly StatePlan[];
  /** States whose output this graph makes. */
  readonly writes: readonly StatePlan[];
}

/** A model graph's values as the state check sees them (the device actor's GraphInfo). */
export interface StateGraphValues {
  readonly inputs: readonly { readonly name: string; readonly dtype: DType; readonly dims: readonly (number | string)[] }[];
  readonly outputs: readonly { readonly name: string; readonly dtype: DType; readonly dims: readonly (number | string)[] }[];
}

/**
 * Checks a stateful model's state declaration against its graphs, one per subgraph (the state
 * is per model, shared by its subgraphs), and says how each graph runs. Each state's input is
 * an input of some graph; a graph that takes a state input makes its output too (a graph with
 * neither leaves the state as it is; one with only the output sets it); every state input and
 * output has the state's numeric dtype and its dims (the batch axis aside; an output dim the
 * model leaves symbolic is checked when it runs). Throws E_CONFIG_INVALID naming the state.
 */
export function planStateGraphs(key: string, state: readonly LoadedStateDeclaration[], graphs: readonly StateGraphValues[]): GraphStatePlan[] {
  const invalid = (message: string): never => {
    throw new ServingError('E_CONFIG_INVALID', message);
  };
  const sub = (g: number): string => (graphs.length > 1 ? `subgraph ${g}'s ` : '');
  const plans: StatePlan[] = state.map((s, index) => {
    const where = `model '${key}' state '${s.input}'`;
    const input = graphs.flatMap((g) => g.inputs).find((v) => v.name === s.input);
    if (!input) return invalid(`${where}: no graph of the model has an input '${s.input}'`);
    if (!graphs.some((g) => g.outputs.some((v) => v.name === s.output))) invalid(`${where}: no graph of the model has an output '${s.output}'`);
    const dtype = input.dtype;
    if (!isNumericDType(dtype)) return invalid(`${where}: a state must be numeric, the input is ${dtype}`);
    let rowDims: number[] = [];
    try {
      rowDims = stateShape(input.dims, s.batchAxis, where);
    } catch (err) {
      invalid((err as Error).message);
    }
    const want = `${dtype} [${rowDims.map((d, i) => (i === s.batchAxis ? 'batch' : d)).join(', ')}]`;
    graphs.forEach((g, k) => {
      const inp = g.inputs.find((v) => v.name === s.input);
      const out = g.outputs.find((v) => v.name === s.output);
      if (inp && !out) invalid(`${where}: ${sub(k)}input '${s.input}' is the state but the graph has no output '${s.output}' to update it`);
      for (const [v, kind] of [[inp, 'input'], [out, 'output']] as const) {
        if (!v) continue;
        const fits =
          v.dtype === dtype &&
          v.dims.length === rowDims.length &&
          v.dims.every((d, i) => i === s.batchAxis || d === rowDims[i] || (kind === 'output' && typeof d === 'string'));
        if (!fits) invalid(`${where}: ${sub(k)}${kind} '${v.name}' is ${v.dtype} [${v.dims.join(', ')}]; the state is ${want}`);
      }
    });
    return { index, input: s.input, output: s.output, axis: s.batchAxis, dtype, rowDims, initial: initialData(where, s, dtype, rowDims) };
  });
  return graphs.map((g) => {
    const reads = plans.filter((p) => g.inputs.some((v) => v.name === p.input));
    const writes = plans.filter((p) => g.outputs.some((v) => v.name === p.output));
    return {
      batchInputs: g.inputs.filter((v) => !reads.some((p) => p.input === v.name)).map((v) => v.name),
      batchOutputs: g.outputs.filter((v) => !writes.some((p) => p.output === v.name)).map((v) => v.name),
      reads,
      writes,
    };
  });
}

/**
 * A state's initial value from its file, checked against the state: its dtype, and its dims
 * either those of one sequence's state (batch axis 1) or the same without the batch axis.
 * Undefined for zeros. Throws E_CONFIG_INVALID naming the state and the file.
 */
function initialData(where: string, s: LoadedStateDeclaration, dtype: NumericDType, rowDims: readonly number[]): NumericArray | undefined {
  if (s.initial === 'zeros') return undefined;
  const v = s.value;
  const what = `${where}: initial file '${s.initial.file}'`;
  if (!v) throw new ServingError('E_CONFIG_INVALID', `${what} was not read (internal: the value travels with the declaration)`);
  const withoutBatch = rowDims.filter((_, i) => i !== s.batchAxis);
  const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
  const dims = (d: readonly number[]): string => `[${d.join(', ')}]`;
  if (v.dtype !== dtype || !(same(v.shape, rowDims) || same(v.shape, withoutBatch))) {
    throw new ServingError(
      'E_CONFIG_INVALID',
      `${what} holds ${v.dtype} ${dims(v.shape)}; the state is ${dtype} ${dims(withoutBatch)} (or ${dims(rowDims)} with its batch axis ${s.batchAxis} of 1)`,
    );
  }
  return v.data;
}

/** A per-sequence state tensor (batch axis of size 1). */
export interface StateTensor {
  readonly dtype: NumericDType;
  readonly dims: readonly number[];
  readonly data: NumericArray;
}

function product(dims: readonly number[], from: number, to: number): number {
  let n = 1;
  for (let i = from; i < to; i++) n *= dims[i]!;
  return n;
}

/**
 * Stacks `rows` (each with batch axis `axis` of size 1, all of one shape) along that axis into
 * one batch tensor's data. A row of undefined is all zeros (padding, or a start from zeros).
 */
export function stackStates(rows: readonly (NumericArray | undefined)[], dtype: NumericDType, rowDims: readonly number[], axis: number): NumericArray {
  const outer = product(rowDims, 0, axis);
  const inner = product(rowDims, axis + 1, rowDims.length);
  const n = rows.length;
  const out = new TYPED_ARRAY[dtype](outer * n * inner);
  for (let r = 0; r < n; r++) {
    const row = rows[r];
    if (!row) continue;
    for (let o = 0; o < outer; o++) {
      (out as Float32Array).set((row as Float32Array).subarray(o * inner, (o + 1) * inner), (o * n + r) * inner);
    }
  }
  return out;
}

/** Cuts row `r` of `n` out of a batch tensor whose batch axis is `axis` (a copy, batch axis 1). */
export function unstackState(data: NumericArray, dims: readonly number[], axis: number, r: number): NumericArray {
  const n = dims[axis]!;
  const outer = product(dims, 0, axis);
  const inner = product(dims, axis + 1, dims.length);
  const out = new (data.constructor as new (length: number) => NumericArray)(outer * inner);
  for (let o = 0; o < outer; o++) {
    (out as Float32Array).set((data as Float32Array).subarray((o * n + r) * inner, (o * n + r + 1) * inner), o * inner);
  }
  return out;
}

/**
 * Triton's sequence request parameters — `sequence_id` (an integer or a string; 0 and '' mean
 * none), `sequence_start`, `sequence_end` (booleans) — as a request's sequence option. Used for
 * REST's top-level "parameters" and KServe v2 parameters. Undefined when they name none; other
 * parameters are not looked at.
 */
export function sequenceFromParameters(params: unknown, where = 'request "parameters"'): SequenceRequest | undefined {
  if (params === undefined || params === null) return undefined;
  if (typeof params !== 'object' || Array.isArray(params)) throw new ServingError('E_INVALID_ARGUMENT', `${where} must be an object`);
  const p = params as Record<string, unknown>;
  const flag = (name: string): boolean => {
    const v = p[name];
    if (v === undefined) return false;
    if (typeof v !== 'boolean') throw new ServingError('E_INVALID_ARGUMENT', `${where}: ${name} must be a boolean, got ${JSON.stringify(v)}`);
    return v;
  };
  const start = flag('sequence_start');
  const end = flag('sequence_end');
  const id = p['sequence_id'];
  if (id === undefined || id === 0 || id === '') {
    if (start || end) throw new ServingError('E_INVALID_ARGUMENT', `${where}: sequence_start and sequence_end need a sequence_id`);
    return undefined;
  }
  if (typeof id !== 'string' && typeof id !== 'number') {
    throw new ServingError('E_INVALID_ARGUMENT', `${where}: sequence_id must be an integer or a string, got ${JSON.stringify(id)}`);
  }
  return { id, start, end };
}

/**
 * The same from text key/value pairs (gRPC metadata `sequence-id`, `sequence-start`,
 * `sequence-end`): an id of decimal digits is a number (up to 2^53 - 1), any other a string;
 * a flag is `true`/`1` or `false`/`0`.
 */
export function sequenceFromText(get: (name: 'id' | 'start' | 'end') => string | undefined, names = { id: 'sequence-id', start: 'sequence-start', end: 'sequence-end' }): SequenceRequest | undefined {
  const flag = (k: 'start' | 'end'): boolean | undefined => {
    const v = get(k)?.trim().toLowerCase();
    if (v === undefined || v === '') return undefined;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new ServingError('E_INVALID_ARGUMENT', `${names[k]} must be true or false, got ${JSON.stringify(get(k))}`);
  };
  const text = get('id');
  const id = text !== undefined && /^\d+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : text;
  const start = flag('start');
  const end = flag('end');
  return sequenceFromParameters(
    { sequence_id: id, ...(start !== undefined ? { sequence_start: start } : {}), ...(end !== undefined ? { sequence_end: end } : {}) },
    'gRPC metadata',
  );
}
