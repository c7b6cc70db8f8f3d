/**
 * The register API used by `servable_config.ts` (MindSpore Serving's `register`, in TS form):
 *
 * ```ts
 * import { register } from 'actorserve';
 * const model = register.declareModel({ modelFile: 'tensor_add.onnx', withBatchDim: true });
 * export function castToFloat32(x1: Tensor, x2: Tensor) { ... }
 * register.method('add_cast', { outputs: ['y'] }, (x1, x2) => {
 *   const [a, b] = register.addStage(castToFloat32, [x1, x2], { outputsCount: 2 });
 *   return register.addStage(model, [a, b]);
 * });
 * ```
 *
 * Declarations go to the collector the loader installs before importing the config. State
 * lives on `globalThis` under registered symbols because the config module may load its own
 * copy of this module (tsx gives each import of a config a fresh namespace).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { DTYPES, type DType } from './dtypes.js';
import { ServingError } from './errors.js';
import type { DeclaredInput, FunctionStage, MethodGraph, ModelStage, Stage, ValueRef } from './method-graph.js';
import { type OptionFailure, boolean, checkOptions, custom, integer, libraryMessage, list, number, object, oneOf, scalar, string } from './option-schema.js';
import { type Tensor, toTensor } from './tensor.js';
import {
  DEFAULT_SEQUENCE_IDLE_TIMEOUT_MS,
  type SequenceDeclaration,
  type SequenceRequest,
  type SequenceStateDeclaration,
  type SequenceOptions,
  type SequenceStateOptions,
  type StateInitial,
  checkSequenceRequest,
  isStateInitial,
} from './sequence.js';

// ---------------------------------------------------------------------------------------------
// Models

export interface DeclareModelOptions {
  /** One ONNX file, or a list of files: the subgraphs of one model (index = position). */
  modelFile: string | readonly string[];
  /** Only 'onnx' is served (case ignored). */
  modelFormat?: string;
  /** Inputs and outputs carry a leading batch dim (default true). */
  withBatchDim?: boolean;
  /** Indexes of inputs that have no batch dim: the first instance's value feeds the batch. */
  withoutBatchDimInputs?: number | readonly number[];
  /**
   * Largest batch when the model's batch dim is dynamic (default 16). A model whose batch dim
   * is fixed uses that size: smaller batches are padded and the padding dropped.
   */
  maxBatchSize?: number;
  /** How long a partial batch may wait for more instances while a device actor is free (default 0 ms). */
  maxQueueDelayMs?: number;
  /**
   * The model is stateful: requests name a sequence, and each state input is fed the previous
   * request's state output of the same sequence (docs/sequences.md).
   */
  sequence?: SequenceOptions;
}

export interface ModelDeclaration {
  readonly key: string;
  readonly files: readonly string[];
  readonly withBatchDim: boolean;
  readonly withoutBatchDimInputs: readonly number[];
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  /** Present for a stateful model. */
  readonly sequence?: SequenceDeclaration;
  /** Set for the model of a distributed servable (`distributed.declareServable`): its ranks run on agents. */
  readonly distributed?: DistributedLayout;
}

/** How the ranks' outputs of a distributed servable combine (engine/distributed.ts). */
export type CombineRule = 'last' | 'concat' | 'sum';

/** The distributed part of a model declaration. */
export interface DistributedLayout {
  readonly rankSize: number;
  readonly stageSize: number;
  readonly combine: CombineRule;
  readonly concatAxis: number;
}

export interface ModelCallOptions {
  /** Which graph of a multi-file model to run (default 0). */
  subgraph?: number;
  /**
   * A stateful model: the sequence this call is a step of, checked like a request's
   * (docs/sequences.md). Its state is the model's, shared by all its subgraphs. Each instance
   * is one step, in order: the first starts the sequence when `start` is set, the last ends it
   * when `end` is set. A sequence the stage-function instance starts and does not end is ended
   * when the instance finishes.
   */
  sequence?: SequenceRequest;
}

/** How a stage worker runs `model.call` and `model.endSequence`: installed per task by the stage pool. */
export interface ModelCallBridge {
  call(modelKey: string, subgraph: number, instances: readonly (readonly Tensor[])[], sequence: SequenceRequest | undefined): Promise<Tensor[][]>;
  endSequence(modelKey: string, id: string | number): Promise<void>;
  /** A bridge for one stage-function instance, whose `close()` ends the sequences it started and did not end. */
  openScope?(): ModelCallScope;
}

/** The model calls of one stage-function instance (see `openModelCallScope`). */
export interface ModelCallScope extends ModelCallBridge {
  /** Ends the sequences started through this scope and not ended; never rejects. Later calls are refused. */
  close(): Promise<void>;
}

const kModel = Symbol.for('actorserve.Model');

/** Handle of a declared model; usable as a stage and, inside stage functions, through `call`. */
export class Model {
  readonly key: string;
  readonly declaration: ModelDeclaration;

  constructor(declaration: ModelDeclaration) {
    this.key = declaration.key;
    this.declaration = declaration;
    Object.defineProperty(this, kModel, { value: true });
  }

  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kModel] === true;
  }

  /**
   * Runs one instance through the model (or subgraph) and resolves with its outputs in the
   * model's output order. Goes through the model's batcher, so it batches with other traffic.
   * Only available inside stage functions.
   */
  async call(inputs: readonly unknown[], options: ModelCallOptions = {}): Promise<Tensor[]> {
    const [outputs] = await this.callMany([inputs], options);
    return outputs!;
  }

  /** Like `call` for several instances at once; resolves with one output list per instance. */
  async callMany(instances: readonly (readonly unknown[])[], options: ModelCallOptions = {}): Promise<Tensor[][]> {
    const prefix = `Model(${this.key}${options.subgraph ? `, subgraph=${options.subgraph}` : ''}).call()`;
    const bridge = globalState().bridge.getStore();
    if (!bridge) {
      throw new ServingError('E_INVALID_ARGUMENT', `${prefix}: only available inside a stage function run by the server`);
    }
    // Inside a stage, a bad call is the servable's bug (a 500), not the client's.
    if (!Array.isArray(instances) || instances.length === 0) {
      throw new ServingError('E_STAGE_FAILED', `${prefix}: no instances given`);
    }
    const subgraph = options.subgraph ?? 0;
    const subgraphs = Math.max(1, this.declaration.files.length); // a distributed model has no files here: one graph
    if (!Number.isInteger(subgraph) || subgraph < 0 || subgraph >= subgraphs) {
      throw new ServingError('E_STAGE_FAILED', `${prefix}: the model has no subgraph ${subgraph}; it has ${subgraphs}`);
    }
    let sequence: SequenceRequest | undefined;
    if (options.sequence !== undefined) {
      try {
        const { id, start, end } = checkSequenceRequest(options.sequence);
        sequence = { id, start, end };
      } catch (err) {
        throw new ServingError('E_STAGE_FAILED', `${prefix}: ${(err as Error).message}`);
      }
    }
    const tensors = instances.map((inputs, i) => {
      if (!Array.isArray(inputs)) {
        throw new ServingError('E_STAGE_FAILED', `${prefix}: instance ${i} must be an array of tensors`);
      }
      return inputs.map((v, j) => {
        try {
          return toTensor(v, `${prefix} instance ${i} input ${j}`);
        } catch (err) {
          throw new ServingError('E_STAGE_FAILED', (err as Error).message);
        }
      });
    });
    return bridge.call(this.key, subgraph, tensors, sequence);
  }

  /**
   * Ends sequence `id` of this stateful model without running a step: its state is freed once
   * nothing of it is running, and a later call of that id needs `start` again. An id that is
   * not live is ignored. Only available inside stage functions.
   */
  async endSequence(id: string | number): Promise<void> {
    const prefix = `Model(${this.key}).endSequence()`;
    const bridge = globalState().bridge.getStore();
    if (!bridge) throw new ServingError('E_INVALID_ARGUMENT', `${prefix}: only available inside a stage function run by the server`);
    let checked: string | number;
    try {
      checked = checkSequenceRequest({ id }).id;
    } catch (err) {
      throw new ServingError('E_STAGE_FAILED', `${prefix}: ${(err as Error).message}`);
    }
    return bridge.endSequence(this.key, checked);
  }
}

// ---------------------------------------------------------------------------------------------
// Placeholders and stages

const kPlaceholder = Symbol.for('actorserve.Placeholder');

/** A value inside a method being traced: a method input or a stage output. */
export interface Placeholder {
  readonly [kPlaceholder]: { readonly trace: MethodTrace; readonly ref: ValueRef };
}

function isPlaceholder(value: unknown): value is Placeholder {
  return typeof value === 'object' && value !== null && kPlaceholder in value;
}

/** A stage function: one instance's inputs in, outputs out (sync or async). */
export type InstanceStageFunction = (...inputs: Tensor[]) => unknown;
/** A batched stage function: a list of instances (each a list of inputs) in, one result per instance out. */
export type BatchStageFunction = (instances: Tensor[][]) => unknown;
/**
 * A stream stage's function (`{ stream: true }`): an async generator function taking one
 * instance's inputs and a trailing StreamContext, e.g.
 * `async function* generate(text: Tensor, ctx: StreamContext)`. (Its parameters are not spelled
 * out here: TypeScript cannot type "any number of tensors, then a context" so that such a
 * function fits; the loader checks the function is an async generator function.)
 */
export type StreamStageFunction = (...args: never[]) => AsyncIterable<unknown>;
/**
 * What `addStage` accepts besides a model (which kind it is shows in its StageOptions:
 * `batchSize` for a batched one, `stream` for a stream stage).
 */
export type StageFunction = InstanceStageFunction | BatchStageFunction | StreamStageFunction;

export interface StageOptions {
  /** Number of outputs (default 1). With 1, `addStage` returns one placeholder; otherwise an array. */
  outputsCount?: number;
  /**
   * For function stages: absent → the function takes one instance's inputs as arguments;
   * 0 or more → the function takes a list of instances (0 = the system picks the size).
   */
  batchSize?: number;
  /** Label for error messages. */
  tag?: string;
  /**
   * For function stages: the function is an async generator function and the stage streams
   * its partial results (docs/servables.md, "Streaming stages"). It takes one instance's inputs
   * and a trailing StreamContext; each `yield` is one partial result. At most one per method,
   * its last stage, whose outputs are the method's; not with `batchSize`.
   */
  stream?: boolean;
}

/** What a stream stage's function gets after its inputs (StageOptions.stream). */
export interface StreamContext {
  /** The request's parameters (InferOptions.parameters; REST/gRPC request parameters). */
  readonly parameters: Readonly<Record<string, string | number | boolean>>;
  /**
   * Aborts when the request ends early: its client went away or cancelled, or its deadline
   * passed. The function's generator is then stopped at its next step (its `finally` runs).
   */
  readonly signal: AbortSignal;
}

const STAGE_FIELDS = {
  outputsCount: integer({ min: 1, default: 1, doc: 'number of outputs' }),
  batchSize: integer({ min: 0, doc: 'function stages: take a list of instances (0 = system-chosen size)' }),
  tag: string({ doc: 'label for error messages' }),
  stream: boolean({ default: false, doc: 'function stages: an async generator function that streams partial results' }),
};

true satisfies SameKeys<StageOptions, typeof STAGE_FIELDS>;

interface MethodTrace {
  readonly name: string;
  readonly stages: Stage[];
  readonly functions: Map<number, StageFunction>;
}

// ---------------------------------------------------------------------------------------------
// The collector

/** What importing a servable_config.ts declared. */
export interface ServableDeclarations {
  readonly models: Model[];
  readonly methods: MethodGraph[];
  /** Stage index → function object, per method (resolved to export names by the loader). */
  readonly stageFunctions: Map<string, Map<number, StageFunction>>;
}

interface GlobalRegisterState {
  collector: ServableDeclarations | undefined;
  trace: MethodTrace | undefined;
  readonly bridge: AsyncLocalStorage<ModelCallBridge>;
}

const kState = Symbol.for('actorserve.register.state');

function globalState(): GlobalRegisterState {
  const g = globalThis as unknown as Record<symbol, GlobalRegisterState | undefined>;
  return (g[kState] ??= { collector: undefined, trace: undefined, bridge: new AsyncLocalStorage() });
}

export function newDeclarations(): ServableDeclarations {
  return { models: [], methods: [], stageFunctions: new Map() };
}

/**
 * Runs `load` (which imports a servable config) with `into` as the collector. Loads must not
 * overlap; the caller serialises them.
 */
export async function collectDeclarations(into: ServableDeclarations, load: () => Promise<unknown>): Promise<void> {
  const state = globalState();
  if (state.collector) throw new ServingError('E_INTERNAL', 'servable configs must be loaded one at a time');
  state.collector = into;
  try {
    await load();
  } finally {
    state.collector = undefined;
  }
}

/** Runs `fn` with `bridge` serving `model.call` (used by stage workers). */
export function runWithModelBridge<T>(bridge: ModelCallBridge, fn: () => T): T {
  return globalState().bridge.run(bridge, fn);
}

/**
 * The model-call scope of one stage-function instance, inside a task's bridge: code run in
 * `run` calls models through it, and `close()` (once, when the instance has finished: returned,
 * thrown or been stopped) ends the sequences it started and did not end. Undefined outside a
 * bridge that scopes (then there is nothing to end). A stage that runs an instance in steps (a
 * stream stage's generator) runs each step in `run`.
 */
export function openModelCallScope(): { run<T>(fn: () => T): T; close(): Promise<void> } | undefined {
  const state = globalState();
  const scope = state.bridge.getStore()?.openScope?.();
  if (!scope) return undefined;
  return { run: (fn) => state.bridge.run(scope, fn), close: () => scope.close() };
}

/** Runs one stage-function instance (`fn`) in its own model-call scope, closed when it settles. */
export async function runInModelCallScope<T>(fn: () => T): Promise<Awaited<T>> {
  const scope = openModelCallScope();
  if (!scope) return await fn();
  try {
    return await scope.run(fn);
  } finally {
    await scope.close();
  }
}

function collector(): ServableDeclarations {
  // Outside a server load (a unit test importing the config, say) declarations are kept in a
  // throwaway collector so that importing a config never fails.
  return globalState().collector ?? newDeclarations();
}

function configError(message: string): ServingError {
  return new ServingError('E_CONFIG_INVALID', message);
}

/** The register API's option failure: E_CONFIG_INVALID worded as a library call (`declareModel: unknown option ...`). */
function configFailure(where: string): OptionFailure {
  return (problem) => {
    throw configError(libraryMessage(where, problem));
  };
}

// ---------------------------------------------------------------------------------------------
// Public API

export const DEFAULT_MAX_BATCH_SIZE = 16;

/**
 * The option schemas of the register API: unknown keys are refused with the closest known one
 * (`declareModel({ maxBatchsize: 8 })` is an error, not a silently ignored option). The
 * interfaces above stay the documented types; these are their run-time checks.
 */
const SEQUENCE_STATE_FIELDS = {
  input: string({ required: true, doc: 'the model input that takes the state' }),
  output: string({ required: true, doc: 'the model output that updates the state' }),
  batchAxis: integer({ min: 0, default: 0, doc: "the state tensor's batch axis" }),
  initial: custom<StateInitial>()({
    check: isStateInitial,
    requirement: "must be 'zeros' or { file: 'name.npy' } (a NumPy file in the model's version folder)",
    default: 'zeros',
    doc: "the state at a sequence's start",
  }),
};

const DECLARE_MODEL_FIELDS = {
  modelFile: list(string({ doc: 'a model file' }), { single: true, required: true, nonEmpty: true, unique: true, item: 'file', doc: 'the model file(s)' }),
  modelFormat: string({ default: 'onnx', doc: "only 'onnx' is served" }),
  withBatchDim: boolean({ default: true, doc: 'inputs and outputs carry a leading batch dim' }),
  withoutBatchDimInputs: list(integer({ min: 0, doc: 'an input index' }), { single: true, default: [], doc: 'inputs without a batch dim' }),
  maxBatchSize: integer({ min: 1, default: DEFAULT_MAX_BATCH_SIZE, doc: 'largest batch when the batch dim is dynamic' }),
  maxQueueDelayMs: number({ min: 0, default: 0, doc: 'how long a partial batch may wait' }),
  sequence: object(
    {
      state: list(object(SEQUENCE_STATE_FIELDS, { doc: 'one state tensor' }), { required: true, nonEmpty: true, item: 'state', doc: 'the state tensors' }),
      idleTimeoutMs: number({ min: 1, default: DEFAULT_SEQUENCE_IDLE_TIMEOUT_MS, doc: 'an idle sequence is dropped after this long' }),
    },
    { doc: 'the model keeps state per sequence' },
  ),
};

/** True when A and B have the same keys: the documented option interfaces and their schemas cannot drift apart. */
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
true satisfies SameKeys<DeclareModelOptions, typeof DECLARE_MODEL_FIELDS>;
true satisfies SameKeys<SequenceStateOptions, typeof SEQUENCE_STATE_FIELDS>;

export function declareModel(options: DeclareModelOptions): Model {
  const o = checkOptions(DECLARE_MODEL_FIELDS, options, configFailure('declareModel'));
  const files = [...o.modelFile];
  if (o.modelFormat.toLowerCase() !== 'onnx') throw configError(`declareModel: modelFormat '${o.modelFormat}' is not served; use 'onnx'`);
  const withoutBatch = [...o.withoutBatchDimInputs];
  const { maxBatchSize, maxQueueDelayMs } = o;

  const into = collector();
  const key = files.join(';');
  if (into.models.some((m) => m.declaration.distributed)) {
    throw configError('declareModel: the servable is already declared distributed (distributed.declareServable); it cannot also declare local models');
  }
  for (const m of into.models) {
    const clash = m.declaration.files.find((f) => files.includes(f));
    if (clash) throw configError(`declareModel: model file '${clash}' is already declared`);
  }
  const model = new Model({
    key,
    files,
    withBatchDim: o.withBatchDim,
    withoutBatchDimInputs: withoutBatch,
    maxBatchSize,
    maxQueueDelayMs,
    ...(o.sequence ? { sequence: sequenceDeclaration(o.sequence) } : {}),
  });
  into.models.push(model);
  return model;
}

function sequenceDeclaration(o: { state: readonly SequenceStateDeclaration[]; idleTimeoutMs: number }): SequenceDeclaration {
  const names = o.state.flatMap((s) => [s.input, s.output]);
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated !== undefined) throw configError(`declareModel: sequence.state names '${repeated}' twice`);
  return { state: o.state.map((s) => ({ ...s })), idleTimeoutMs: o.idleTimeoutMs };
}

/**
 * Adds a model made elsewhere in the domain (`distributed.declareServable`) to the servable
 * being loaded: at most one, and not beside local models (MindSpore's rule).
 */
export function addDeclaredModel(model: Model, where: string): void {
  const into = collector();
  if (into.models.some((m) => m.declaration.distributed)) throw configError(`${where}: the servable is already declared distributed; declare it once`);
  if (into.models.length > 0) {
    throw configError(`${where}: the servable already declares local models (register.declareModel); a distributed servable declares none`);
  }
  into.models.push(model);
}

/**
 * One input of a method as `register.method` declares it. Request values are converted to
 * `dtype` before any stage runs, from every transport alike (JSON `1` becomes 1.0 for a float32
 * input, and so does an int32, float16 or bool tensor); a value the dtype cannot hold, a dtype
 * that does not convert (strings, bytes; numbers into bool) or a shape that does not fit
 * `shape` is refused as a client error.
 */
export interface MethodInputOptions {
  /** The input's name: the method function's parameter at the same position. */
  name: string;
  dtype?: DType;
  /** The shape of one instance's value; -1 or a string (`'N'`) is a dynamic dim. */
  shape?: readonly (number | string)[];
}

export interface MethodOptions {
  /** Output names, in the order the method function returns them. */
  outputs: string | readonly string[];
  /**
   * The inputs, one per parameter of the method function, in order: a name, or a name with a
   * dtype and shape. Default: the function's parameter names, untyped.
   */
  inputs?: readonly (string | MethodInputOptions)[];
}

const METHOD_INPUT_FIELDS = {
  name: string({ required: true, doc: "the method function's parameter at this position" }),
  dtype: oneOf<DType>()({ values: DTYPES, doc: 'the dtype values are converted to' }),
  shape: list(scalar({ doc: 'a dim' }), { doc: 'the per-instance shape; -1 or a string is a dynamic dim' }),
};

const METHOD_FIELDS = {
  outputs: list(string({ doc: 'an output name' }), { single: true, required: true, unique: true, item: 'output name', doc: 'output names' }),
  inputs: list(object(METHOD_INPUT_FIELDS, { doc: 'one input' }), { doc: 'the inputs' }),
};

true satisfies SameKeys<MethodOptions, typeof METHOD_FIELDS>;
true satisfies SameKeys<MethodInputOptions, typeof METHOD_INPUT_FIELDS>;

/**
 * Declares a method. `fn` runs once, now, with one placeholder per input; its `addStage` calls
 * become the method's stages and what it returns becomes the outputs.
 */
export function method(
  name: string,
  options: MethodOptions,
  fn: (...inputs: Placeholder[]) => Placeholder | readonly Placeholder[],
): void {
  if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
    throw configError(`method: invalid method name ${JSON.stringify(name)}`);
  }
  const into = collector();
  if (into.methods.some((m) => m.name === name)) throw configError(`method '${name}' is declared more than once`);
  const where = `method '${name}'`;
  // A plain name stands for { name }, so that one schema checks both forms.
  const given: unknown =
    typeof options === 'object' && options !== null && Array.isArray(options.inputs)
      ? { ...options, inputs: options.inputs.map((i: unknown) => (typeof i === 'string' ? { name: i } : i)) }
      : options;
  const o = checkOptions(METHOD_FIELDS, given, configFailure(where));
  const outputs = [...o.outputs];
  checkNames(outputs, `${where}: outputs`);
  const inputs: CheckedInput[] = o.inputs ? methodInputs(o.inputs, fn, where) : parameterNames(fn, name).map((n) => ({ name: n }));
  const inputNames = inputs.map((i) => i.name);
  checkNames(inputNames, `${where}: inputs`);
  const declaredInputs: DeclaredInput[] = inputs.map((i) => ({
    ...(i.dtype !== undefined ? { dtype: i.dtype } : {}),
    ...(i.shape !== undefined ? { dims: i.shape } : {}),
  }));

  const state = globalState();
  const trace: MethodTrace = { name, stages: [], functions: new Map() };
  const previous = state.trace;
  state.trace = trace;
  let returned: unknown;
  try {
    returned = fn(...inputNames.map((_, i) => makePlaceholder(trace, { stage: 0, output: i })));
  } finally {
    state.trace = previous;
  }
  const list = Array.isArray(returned) ? returned : [returned];
  if (list.length !== outputs.length) {
    // The usual slip: a stage whose function returns several values, added without outputsCount,
    // gives one placeholder that the method returns as one value.
    const hint =
      list.length < outputs.length
        ? ` (a stage with several outputs needs addStage(f, args, { outputsCount: N }), and the method returns all of them: const [a, b] = register.addStage(...); return [a, b])`
        : '';
    throw configError(`method '${name}': returns ${list.length} values but declares ${outputs.length} outputs${hint}`);
  }
  const returns = list.map((v, i) => refOf(trace, v, `method '${name}': returned value ${i}`));
  checkStreamStage(name, trace.stages, returns);
  into.methods.push({ name, inputs: inputNames, declaredInputs, outputs, stages: trace.stages, returns });
  into.stageFunctions.set(name, trace.functions);
}

/**
 * What `addStage` returns for `outputsCount: N`: a tuple of N placeholders when N is a literal
 * (so `const [a, b] = addStage(f, [x], { outputsCount: 2 })` is typed), else a list.
 */
export type Placeholders<N extends number, Acc extends Placeholder[] = []> = number extends N
  ? Placeholder[]
  : Acc['length'] extends N
    ? Acc
    : Placeholders<N, [...Acc, Placeholder]>;

export function addStage(stage: Model | StageFunction, args: readonly Placeholder[], options?: StageOptions & { outputsCount?: 1 }): Placeholder;
export function addStage<N extends number>(
  stage: Model | StageFunction,
  args: readonly Placeholder[],
  options: StageOptions & { outputsCount: N },
): Placeholders<N>;
export function addStage(
  stage: Model | StageFunction,
  args: readonly Placeholder[],
  options: StageOptions = {},
): Placeholder | Placeholder[] {
  const trace = globalState().trace;
  if (!trace) throw configError('addStage: only callable inside a method function');
  const index = trace.stages.length + 1;
  const where = `method '${trace.name}', stage ${index}`;
  const o = checkOptions(STAGE_FIELDS, options, configFailure(`${where}: addStage`));
  const outputsCount = o.outputsCount;
  if (!Array.isArray(args)) throw configError(`${where}: addStage: args must be an array of placeholders`);
  const refs = args.map((a, i) => refOf(trace, a, `${where}: argument ${i}`));

  let def: ModelStage | FunctionStage;
  if (stage instanceof Model) {
    def = {
      kind: 'model',
      modelKey: stage.key,
      subgraph: 0,
      args: refs,
      outputsCount,
      tag: o.tag ?? `Model '${stage.key}'`,
    };
  } else if (typeof stage === 'function') {
    if (o.stream) checkStreamFunction(stage, o.batchSize, refs.length, where);
    else if (o.batchSize === undefined && stage.length !== refs.length && stage.length !== 0) {
      throw configError(`${where}: function '${stage.name}' takes ${stage.length} arguments but gets ${refs.length}`);
    }
    def = {
      kind: 'function',
      functionName: stage.name,
      batchSize: o.batchSize,
      args: refs,
      outputsCount,
      tag: o.tag ?? `Function '${stage.name}'`,
      ...(o.stream ? { stream: true } : {}),
    };
    trace.functions.set(index, stage);
  } else {
    throw configError(`${where}: a stage must be a declared model or a function`);
  }
  if (o.stream && def.kind === 'model') throw configError(`${where}: addStage: stream is for function stages (an async generator function), not models`);
  trace.stages.push(def);
  const outs = Array.from({ length: outputsCount }, (_, o) => makePlaceholder(trace, { stage: index, output: o }));
  return outputsCount === 1 ? outs[0]! : outs;
}

/** A stream stage's function: an async generator taking the instance's inputs and, optionally, a trailing StreamContext. */
function checkStreamFunction(stage: StageFunction, batchSize: number | undefined, args: number, where: string): void {
  if (batchSize !== undefined) throw configError(`${where}: addStage: stream and batchSize exclude each other (a stream stage takes one instance)`);
  if (Object.prototype.toString.call(stage) !== '[object AsyncGeneratorFunction]') {
    throw configError(`${where}: addStage: a stream stage must be an async generator function (async function* ${stage.name || 'f'}(...)), '${stage.name}' is not`);
  }
  if (stage.length !== args && stage.length !== args + 1 && stage.length !== 0) {
    throw configError(`${where}: function '${stage.name}' takes ${stage.length} arguments but gets ${args} inputs and a StreamContext`);
  }
}

/**
 * A method's stream stage (StageOptions.stream) must be its only one and its last, and the
 * method must return exactly that stage's outputs: its partial results are the method's.
 */
function checkStreamStage(name: string, stages: readonly Stage[], returns: readonly ValueRef[]): void {
  const streams = stages.flatMap((s, i) => (s.kind === 'function' && s.stream ? [i + 1] : []));
  if (streams.length === 0) return;
  const where = `method '${name}'`;
  if (streams.length > 1) throw configError(`${where}: has ${streams.length} stream stages (stages ${streams.join(', ')}); a method has at most one`);
  const index = streams[0]!;
  const stage = stages[index - 1]!;
  if (index !== stages.length) throw configError(`${where}: stream stage ${index} (${stage.tag}) must be the method's last stage, it is followed by ${stages.length - index} more`);
  const outputs = returns.map((r) => (r.stage === index ? r.output : -1));
  if (outputs.length !== stage.outputsCount || outputs.includes(-1) || new Set(outputs).size !== outputs.length) {
    throw configError(`${where}: must return exactly the outputs of its stream stage ${index} (${stage.tag}), each once: its partial results are the method's`);
  }
}

function makePlaceholder(trace: MethodTrace, ref: ValueRef): Placeholder {
  return Object.freeze({ [kPlaceholder]: { trace, ref } });
}

function refOf(trace: MethodTrace, value: unknown, where: string): ValueRef {
  if (!isPlaceholder(value)) {
    throw configError(`${where} must be a method input or an output of addStage (got ${typeof value})`);
  }
  const { trace: owner, ref } = value[kPlaceholder];
  if (owner !== trace) throw configError(`${where} comes from another method`);
  return ref;
}

type CheckedInput = { readonly name: string; readonly dtype?: DType; readonly shape?: readonly (string | number)[] };

/**
 * Declared inputs: one per parameter of `fn`, and where its parameters are plain names, the
 * same names in the same order (a declaration that renamed a parameter would make requests
 * name something the code does not). A function whose parameters cannot be read (rest,
 * destructuring) takes its names from the declaration.
 */
function methodInputs(declared: readonly CheckedInput[], fn: (...inputs: Placeholder[]) => unknown, where: string): CheckedInput[] {
  if (fn.length !== declared.length) {
    throw configError(`${where}: the function takes ${fn.length} parameters but ${declared.length} inputs are declared`);
  }
  let params: string[] | undefined;
  try {
    params = parameterNames(fn, where);
  } catch {
    params = undefined;
  }
  declared.forEach((input, i) => {
    const param = params?.[i];
    if (param !== undefined && param !== input.name) {
      throw configError(`${where}: inputs[${i}] is named '${input.name}' but the function's parameter ${i} is '${param}'; the names must match`);
    }
    input.shape?.forEach((d, k) => {
      if (typeof d === 'number' && !(Number.isInteger(d) && d >= -1)) {
        throw configError(`${where}: inputs[${i}].shape[${k}] must be an integer >= -1 or a string (-1 and strings are dynamic dims), got ${d}`);
      }
    });
  });
  return [...declared];
}

function checkNames(names: readonly string[], where: string): void {
  if (names.some((n) => typeof n !== 'string' || n.length === 0)) throw configError(`${where} must be non-empty strings`);
  if (new Set(names).size !== names.length) throw configError(`${where} has a repeated name: ${names.join(', ')}`);
}

/** Parameter names of a plain `(a, b) => ...` or `function (a, b) {...}`; destructuring and rest are refused. */
function parameterNames(fn: (...inputs: Placeholder[]) => unknown, method: string): string[] {
  const src = Function.prototype.toString.call(fn);
  const match = /^(?:async\s*)?(?:function\b[^(]*)?\(([^)]*)\)|^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(src);
  const list = match ? (match[1] ?? match[2] ?? '') : undefined;
  if (list === undefined) throw configError(`method '${method}': cannot read the function's parameters; pass { inputs: [...] }`);
  const names = list
    .split(',')
    .map((p) => p.replace(/\/\*.*?\*\//g, '').trim())
    .filter((p) => p.length > 0);
  for (const n of names) {
    if (!/^[A-Za-z_$][\w$]*$/.test(n)) {
      throw configError(`method '${method}': parameter '${n}' must be a plain name (no defaults, destructuring or rest)`);
    }
  }
  return names;
}
