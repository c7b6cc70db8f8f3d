/**
 * Distributed servables in the domain: what `distributed.declareServable` declares (ranks,
 * stages, how the ranks' outputs combine) and the combining itself. ONNX Runtime has no
 * collective operations, so the engine does what MindSpore left to HCCL inside the graph:
 * every rank of a stage gets the same inputs (broadcast) and the ranks' outputs are combined
 * by the declared rule:
 * - `last`: the last rank's outputs (MindSpore's rule);
 * - `concat`: the ranks' outputs joined along `concatAxis`, in rank order (column-parallel shards);
 * - `sum`: the ranks' outputs added element-wise (row-parallel partial products: an all-reduce).
 */
import { type NumericArray, type NumericDType, allocate } from './dtypes.js';
import { ServingError } from './errors.js';
import {
  type OptionFailure,
  type OptionsIn,
  type OptionsOut,
  boolean,
  checkOptions,
  integer,
  invalidArgument,
  libraryMessage,
  list,
  number,
  object,
  oneOf,
  path,
  string,
} from './option-schema.js';
import { type CombineRule, DEFAULT_MAX_BATCH_SIZE, Model, addDeclaredModel } from './register.js';
import { SSL_CONFIG_OPTIONS } from './ssl-config.js';

export type { CombineRule, DistributedLayout } from './register.js';
export const COMBINE_RULES: readonly CombineRule[] = ['last', 'concat', 'sum'];

export interface DeclareServableOptions {
  /** Ranks in all (each a model shard on an agent), at least 1. */
  rankSize: number;
  /**
   * Pipeline stages the ranks are split into (rankSize must be a multiple): stage s is ranks
   * s·k … s·k + k − 1 (k = rankSize / stageSize); stage 0 gets the inputs, stage s + 1 stage s's
   * combined outputs; the last stage's combined outputs are the servable's.
   */
  stageSize: number;
  /** Inputs and outputs carry a leading batch dim (default true). */
  withBatchDim?: boolean;
  /** Indexes of inputs that have no batch dim: the first instance's value feeds the batch. */
  withoutBatchDimInputs?: number | readonly number[];
  /** How the ranks' outputs become the servable's (default 'last', MindSpore's). */
  combine?: CombineRule;
  /** The axis `combine: 'concat'` joins along (default 0; negative counts from the end). */
  concatAxis?: number;
  /** Largest batch when the ranks' batch dim is dynamic (default 16). */
  maxBatchSize?: number;
  /** How long a partial batch may wait for more instances (default 0 ms). */
  maxQueueDelayMs?: number;
}

/** The key of a distributed servable's model (MindSpore keys it by the servable's folder name). */
export const DISTRIBUTED_MODEL_KEY = 'distributed';

const DECLARE_SERVABLE_FIELDS = {
  rankSize: integer({ min: 1, required: true, doc: 'ranks in all' }),
  stageSize: integer({ min: 1, required: true, doc: 'pipeline stages' }),
  withBatchDim: boolean({ default: true, doc: 'inputs and outputs carry a leading batch dim' }),
  withoutBatchDimInputs: list(integer({ min: 0, doc: 'an input index' }), { single: true, default: [], doc: 'inputs without a batch dim' }),
  combine: oneOf<CombineRule>()({ values: COMBINE_RULES, default: 'last', doc: "how the ranks' outputs combine" }),
  concatAxis: integer({ default: 0, doc: "the axis combine: 'concat' joins along" }),
  maxBatchSize: integer({ min: 1, default: DEFAULT_MAX_BATCH_SIZE, doc: 'largest batch when the batch dim is dynamic' }),
  maxQueueDelayMs: number({ min: 0, default: 0, doc: 'how long a partial batch may wait' }),
};

type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
true satisfies SameKeys<DeclareServableOptions, typeof DECLARE_SERVABLE_FIELDS>;

const fail: OptionFailure = (problem) => {
  throw new ServingError('E_CONFIG_INVALID', libraryMessage('distributed.declareServable', problem));
};

/**
 * Declares the servable as distributed (in servable_config.ts, instead of `register.declareModel`):
 * its model is the ranks that agents host. Returns the model to use in `register.addStage`.
 */
export function declareServable(options: DeclareServableOptions): Model {
  const o = checkOptions(DECLARE_SERVABLE_FIELDS, options, fail);
  if (o.rankSize % o.stageSize !== 0) {
    throw new ServingError('E_CONFIG_INVALID', `distributed.declareServable: rankSize ${o.rankSize} must be a multiple of stageSize ${o.stageSize}`);
  }
  const model = new Model({
    key: DISTRIBUTED_MODEL_KEY,
    files: [],
    withBatchDim: o.withBatchDim,
    withoutBatchDimInputs: [...o.withoutBatchDimInputs],
    maxBatchSize: o.maxBatchSize,
    maxQueueDelayMs: o.maxQueueDelayMs,
    distributed: { rankSize: o.rankSize, stageSize: o.stageSize, combine: o.combine, concatAxis: o.concatAxis },
  });
  addDeclaredModel(model, 'distributed.declareServable');
  return model;
}

/** One rank's output: numeric only (string outputs cannot be summed or joined by position). */
export interface RankOutput {
  readonly dtype: NumericDType;
  readonly dims: readonly number[];
  readonly data: NumericArray;
}

function combineError(message: string): ServingError {
  return new ServingError('E_MODEL_FAILED', message);
}

/**
 * Combines output `name` of every rank (in rank order) by `rule`. Throws E_MODEL_FAILED naming
 * the rank whose output does not fit (another dtype, or dims that differ off the axis).
 */
export function combineRankOutputs(rule: CombineRule, concatAxis: number, parts: readonly RankOutput[], name: string): RankOutput {
  const first = parts[0];
  if (!first) throw combineError(`output '${name}': no rank answered`);
  if (rule === 'last') return parts[parts.length - 1]!;
  parts.forEach((p, r) => {
    if (p.dtype !== first.dtype) throw combineError(`output '${name}': rank ${r} gives ${p.dtype}, rank 0 gives ${first.dtype}; combine '${rule}' needs one dtype`);
  });
  if (rule === 'sum') return sumParts(parts, name);
  return concatParts(parts, concatAxis, name);
}

function sumParts(parts: readonly RankOutput[], name: string): RankOutput {
  const first = parts[0]!;
  if (first.dtype === 'float16' || first.dtype === 'bool') {
    throw combineError(`output '${name}': combine 'sum' does not add ${first.dtype} tensors; declare the shards' outputs as float32`);
  }
  parts.forEach((p, r) => {
    if (p.dims.join() !== first.dims.join()) {
      throw combineError(`output '${name}': rank ${r} gives shape [${p.dims.join(', ')}], rank 0 [${first.dims.join(', ')}]; combine 'sum' needs one shape`);
    }
  });
  const out = allocate(first.dtype, first.data.length);
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    const o = out as BigInt64Array;
    for (const p of parts) {
      const d = p.data as BigInt64Array;
      for (let i = 0; i < o.length; i++) o[i] = o[i]! + d[i]!;
    }
  } else {
    const o = out as Float64Array;
    for (const p of parts) {
      const d = p.data as Float64Array;
      for (let i = 0; i < o.length; i++) o[i] = o[i]! + d[i]!;
    }
  }
  return { dtype: first.dtype, dims: first.dims, data: out };
}

function concatParts(parts: readonly RankOutput[], concatAxis: number, name: string): RankOutput {
  const first = parts[0]!;
  const rank = first.dims.length;
  const axis = concatAxis < 0 ? concatAxis + rank : concatAxis;
  if (axis < 0 || axis >= rank) {
    throw combineError(`output '${name}': concatAxis ${concatAxis} is outside its ${rank} dims [${first.dims.join(', ')}]`);
  }
  parts.forEach((p, r) => {
    const off = p.dims.length !== rank || p.dims.some((d, k) => k !== axis && d !== first.dims[k]);
    if (off) {
      throw combineError(
        `output '${name}': rank ${r} gives shape [${p.dims.join(', ')}], rank 0 [${first.dims.join(', ')}]; combine 'concat' on axis ${axis} needs the other dims equal`,
      );
    }
  });
  const outer = first.dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inners = parts.map((p) => p.dims.slice(axis).reduce((a, b) => a * b, 1));
  const dims = first.dims.map((d, k) => (k === axis ? parts.reduce((s, p) => s + p.dims[axis]!, 0) : d));
  const out = allocate(first.dtype, parts.reduce((s, p) => s + p.data.length, 0));
  const target = out as Float64Array;
  let at = 0;
  for (let o = 0; o < outer; o++) {
    parts.forEach((p, r) => {
      const inner = inners[r]!;
      target.set((p.data as Float64Array).subarray(o * inner, (o + 1) * inner), at);
      at += inner;
    });
  }
  return { dtype: first.dtype, dims, data: out };
}

/** Options of `distributed.startServable` (besides the servable's directory and name). */
export const DISTRIBUTED_START_OPTIONS = {
  rankTableJsonFile: path({ required: true, doc: "MindSpore rank table (JSON); relative: to the servable's folder, else the current directory" }),
  versionNumber: integer({ min: 0, default: 1, doc: 'the version number it serves as (0 counts as 1)' }),
  distributedAddress: string({ default: '0.0.0.0:6200', doc: 'host:port the coordinator listens on for agents' }),
  waitAgentsTimeInSeconds: number({ min: 0, default: 0, doc: 'how long to wait for every rank to register; 0 = forever' }),
  heartbeatIntervalMs: integer({ min: 10, default: 1000, doc: 'how often each rank heartbeats the coordinator' }),
  heartbeatTimeoutMs: integer({ min: 20, default: 5000, doc: 'a rank silent this long is lost (the servable is unavailable until it registers again)' }),
  predictTimeoutMs: integer({ min: 1, default: 10_000, doc: 'how long one rank may take to answer one batch before it counts as lost' }),
  maxQueuedRequests: integer({ min: 1, default: 10_000, doc: 'requests admitted at once; beyond: E_OVERLOADED (HTTP 503)' }),
  defaultDeadlineMs: number({ min: 0, exclusiveMin: true, default: 30_000, doc: 'deadline of requests that name none' }),
  numParallelWorkers: integer({ min: 0, max: 64, default: 0, doc: 'stage-pool threads for TS stages; 0 = 1 when the servable has function stages' }),
  sslConfig: object(SSL_CONFIG_OPTIONS, { doc: "TLS on the agent link (as the servers' sslConfig; the ranks need it too); plaintext when absent" }),
} as const;

/** What `distributed.startServable` takes as its third argument. */
export type DistributedStartOptions = OptionsIn<typeof DISTRIBUTED_START_OPTIONS>;
export type DistributedStartSettings = OptionsOut<typeof DISTRIBUTED_START_OPTIONS>;

/** Checks `distributed.startServable`'s options (unknown keys refused with the closest known one). */
export function checkDistributedStart(options: unknown): DistributedStartSettings {
  return checkOptions(DISTRIBUTED_START_OPTIONS, options ?? {}, invalidArgument('distributed.startServable'));
}
