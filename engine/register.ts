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
import { ServingError } from './errors.js';
import type { FunctionStage, MethodGraph, ModelStage, Stage, ValueRef } from './method-graph.js';
import { type Tensor, toTensor } from './tensor.js';

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
}

export interface ModelDeclaration {
  readonly key: string;
  readonly files: readonly string[];
  readonly withBatchDim: boolean;
  readonly withoutBatchDimInputs: readonly number[];
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
}

export interface ModelCallOptions {
  /** Which graph of a multi-file model to run (default 0). */
  subgraph?: number;
}

/** How a stage worker runs `model.call`: installed per task by the stage pool. */
export type ModelCallBridge = (
  modelKey: string,
  subgraph: number,
  instances: readonly (readonly Tensor[])[],
) => Promise<Tensor[][]>;

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
    if (!Array.isArray(instances) || instances.length === 0) {
      throw new ServingError('E_INVALID_ARGUMENT', `${prefix}: no instances given`);
    }
    const subgraph = options.subgraph ?? 0;
    if (!Number.isInteger(subgraph) || subgraph < 0 || subgraph >= this.declaration.files.length) {
      throw new ServingError(
        'E_INVALID_ARGUMENT',
        `${prefix}: the model has no subgraph ${subgraph}; it has ${this.declaration.files.length}`,
      );
    }
    const tensors = instances.map((inputs, i) => {
      if (!Array.isArray(inputs)) {
        throw new ServingError('E_INVALID_ARGUMENT', `${prefix}: instance ${i} must be an array of tensors`);
      }
      return inputs.map((v, j) => toTensor(v, `${prefix} instance ${i} input ${j}`));
    });
    return bridge(this.key, subgraph, tensors);
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
/** What `addStage` accepts besides a model (which of the two it is shows in its StageOptions.batchSize). */
export type StageFunction = InstanceStageFunction | BatchStageFunction;

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
}

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

function collector(): ServableDeclarations {
  // Outside a server load (a unit test importing the config, say) declarations are kept in a
  // throwaway collector so that importing a config never fails.
  return globalState().collector ?? newDeclarations();
}

function configError(message: string): ServingError {
  return new ServingError('E_CONFIG_INVALID', message);
}

// ---------------------------------------------------------------------------------------------
// Public API

export const DEFAULT_MAX_BATCH_SIZE = 16;

export function declareModel(options: DeclareModelOptions): Model {
  const files = typeof options.modelFile === 'string' ? [options.modelFile] : [...(options.modelFile ?? [])];
  if (files.length === 0 || files.some((f) => typeof f !== 'string' || f.length === 0)) {
    throw configError('declareModel: modelFile must be a non-empty file name or a non-empty list of them');
  }
  if (new Set(files).size !== files.length) throw configError(`declareModel: modelFile lists a file twice: ${files.join(', ')}`);
  const format = (options.modelFormat ?? 'onnx').toLowerCase();
  if (format !== 'onnx') throw configError(`declareModel: modelFormat '${options.modelFormat}' is not served; use 'onnx'`);
  const withoutBatch =
    options.withoutBatchDimInputs === undefined
      ? []
      : typeof options.withoutBatchDimInputs === 'number'
        ? [options.withoutBatchDimInputs]
        : [...options.withoutBatchDimInputs];
  if (withoutBatch.some((i) => !Number.isInteger(i) || i < 0)) {
    throw configError('declareModel: withoutBatchDimInputs must hold input indexes >= 0');
  }
  const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw configError('declareModel: maxBatchSize must be an integer >= 1');
  const maxQueueDelayMs = options.maxQueueDelayMs ?? 0;
  if (!(maxQueueDelayMs >= 0) || !Number.isFinite(maxQueueDelayMs)) throw configError('declareModel: maxQueueDelayMs must be >= 0');

  const into = collector();
  const key = files.join(';');
  for (const m of into.models) {
    const clash = m.declaration.files.find((f) => files.includes(f));
    if (clash) throw configError(`declareModel: model file '${clash}' is already declared`);
  }
  const model = new Model({
    key,
    files,
    withBatchDim: options.withBatchDim ?? true,
    withoutBatchDimInputs: withoutBatch,
    maxBatchSize,
    maxQueueDelayMs,
  });
  into.models.push(model);
  return model;
}

export interface MethodOptions {
  /** Output names, in the order the method function returns them. */
  outputs: string | readonly string[];
  /** Input names; default: the method function's parameter names. */
  inputs?: readonly string[];
}

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
  const outputs = typeof options.outputs === 'string' ? [options.outputs] : [...options.outputs];
  checkNames(outputs, `method '${name}': outputs`);
  const inputs = options.inputs ? [...options.inputs] : parameterNames(fn, name);
  checkNames(inputs, `method '${name}': inputs`);
  if (fn.length !== inputs.length && options.inputs) {
    throw configError(`method '${name}': the function takes ${fn.length} parameters but ${inputs.length} inputs are named`);
  }

  const state = globalState();
  const trace: MethodTrace = { name, stages: [], functions: new Map() };
  const previous = state.trace;
  state.trace = trace;
  let returned: unknown;
  try {
    returned = fn(...inputs.map((_, i) => makePlaceholder(trace, { stage: 0, output: i })));
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
  into.methods.push({ name, inputs, outputs, stages: trace.stages, returns });
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
  const outputsCount = options.outputsCount ?? 1;
  if (!Number.isInteger(outputsCount) || outputsCount < 1) throw configError('addStage: outputsCount must be an integer >= 1');
  if (!Array.isArray(args)) throw configError('addStage: args must be an array of placeholders');
  const index = trace.stages.length + 1;
  const where = `method '${trace.name}', stage ${index}`;
  const refs = args.map((a, i) => refOf(trace, a, `${where}: argument ${i}`));

  let def: ModelStage | FunctionStage;
  if (stage instanceof Model) {
    def = {
      kind: 'model',
      modelKey: stage.key,
      subgraph: 0,
      args: refs,
      outputsCount,
      tag: options.tag ?? `Model '${stage.key}'`,
    };
  } else if (typeof stage === 'function') {
    if (options.batchSize !== undefined && (!Number.isInteger(options.batchSize) || options.batchSize < 0)) {
      throw configError(`${where}: batchSize must be an integer >= 0`);
    }
    if (options.batchSize === undefined && stage.length !== refs.length && stage.length !== 0) {
      throw configError(`${where}: function '${stage.name}' takes ${stage.length} arguments but gets ${refs.length}`);
    }
    def = {
      kind: 'function',
      functionName: stage.name,
      batchSize: options.batchSize,
      args: refs,
      outputsCount,
      tag: options.tag ?? `Function '${stage.name}'`,
    };
    trace.functions.set(index, stage);
  } else {
    throw configError(`${where}: a stage must be a declared model or a function`);
  }
  trace.stages.push(def);
  const outs = Array.from({ length: outputsCount }, (_, o) => makePlaceholder(trace, { stage: index, output: o }));
  return outputsCount === 1 ? outs[0]! : outs;
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
