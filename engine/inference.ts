/**
 * What a request asks of a method and what it gets back, independent of who serves it (the
 * runtime's supervisor, a transport, a test): per-request options and per-instance outcomes.
 */
import type { CancelSignal } from './cancellation.js';
import type { DType } from './dtypes.js';
import type { ServingError } from './errors.js';
import type { SequenceRequest } from './sequence.js';
import type { Instance } from './tensor.js';

/** Request-level parameters (REST/KServe `parameters`): reach a stream stage as `ctx.parameters`. */
export type RequestParameters = Readonly<Record<string, string | number | boolean>>;

/** What one request parameter may hold: a string, a finite number or a boolean. */
export function isParameterValue(value: unknown): value is string | number | boolean {
  return typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

export interface InferOptions {
  /** Milliseconds the request may take from now (default: the servable's defaultDeadlineMs). */
  deadlineMs?: number;
  /** Aborting it answers the request with E_CANCELLED and drops its queued work (a client went away). */
  signal?: CancelSignal;
  /**
   * For a method whose model is stateful (`declareModel({ sequence })`): the sequence this
   * request continues (or starts, or ends). Each instance is one step, in order.
   */
  sequence?: SequenceRequest;
  /**
   * Request-level parameters (sampling settings of a generation, say): a streaming method's
   * stream stage gets them as `ctx.parameters`; other stages ignore them.
   */
  parameters?: RequestParameters;
}

/**
 * One event of `inferStream`: a (partial) result of the instance at `index` in the request, or
 * the error that ended that instance. A streaming method gives one event per partial result;
 * any other method one per instance (its whole outputs, or its error).
 */
export type StreamEvent = { readonly index: number; readonly outputs: Instance } | { readonly index: number; readonly error: ServingError };

/** Per-instance outcome: the outputs by name, or the error that instance got. */
export type InstanceOutcome = Instance | ServingError;

/** One input of a method as clients see it; where it feeds a model directly, the model's dtype and dims. */
export interface MethodInput {
  readonly name: string;
  readonly dtype?: string;
  /** A string or -1 is a dynamic dim. */
  readonly dims?: readonly (number | string)[];
}

/** One input or output of a method as batch-shaped protocols (KServe v2) see it. */
export interface TensorLayout {
  /** Declared, or the model's where the tensor feeds a model input (comes from a model output) directly. */
  readonly dtype?: DType;
  /** Dims of one instance, without a batch dim (a string or -1 is dynamic); absent: unknown. */
  readonly dims?: readonly (number | string)[];
  /**
   * In a batched method, whether this input is split along its leading dim into instances
   * (false for a model input listed in `withoutBatchDimInputs`: every instance gets it whole).
   * False for every tensor of a method that is not batched.
   */
  readonly batched: boolean;
}

/**
 * How a method's instances map onto whole-batch tensors. A method is batched when one of its
 * model stages runs a model declared `withBatchDim` (the default): a client's tensor of shape
 * [N, ...] is then N instances, and outputs stack the instances' results along a new leading
 * dim. A method whose models have no batch dim (or that has no model stage) takes each tensor
 * whole as one instance.
 */
export interface MethodLayout {
  readonly batched: boolean;
  /** Index-aligned with MethodInfo.inputs. */
  readonly inputs: readonly TensorLayout[];
  /** Index-aligned with MethodInfo.outputs. */
  readonly outputs: readonly TensorLayout[];
}

/** A method's signature, as metadata endpoints and decoders need it. */
export interface MethodInfo {
  readonly name: string;
  readonly inputs: readonly MethodInput[];
  readonly outputs: readonly string[];
  /** Batch layout and output types (set by the runtime; absent in metadata a client rebuilt). */
  readonly layout?: MethodLayout;
  /** True when the method runs a stateful model: its requests name a sequence (docs/sequences.md). */
  readonly sequence?: boolean;
  /** True when the method streams partial results (its last stage is a stream stage): serve it with `inferStream`. */
  readonly stream?: true;
}
