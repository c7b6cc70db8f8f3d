/**
 * What a request asks of a method and what it gets back, independent of who serves it (the
 * runtime's supervisor, a transport, a test): per-request options and per-instance outcomes.
 */
import type { CancelSignal } from './cancellation.js';
import type { ServingError } from './errors.js';
import type { Instance } from './tensor.js';

export interface InferOptions {
  /** Milliseconds the request may take from now (default: the servable's defaultDeadlineMs). */
  deadlineMs?: number;
  /** Aborting it answers the request with E_CANCELLED and drops its queued work (a client went away). */
  signal?: CancelSignal;
}

/** Per-instance outcome: the outputs by name, or the error that instance got. */
export type InstanceOutcome = Instance | ServingError;

/** One input of a method as clients see it; where it feeds a model directly, the model's dtype and dims. */
export interface MethodInput {
  readonly name: string;
  readonly dtype?: string;
  /** A string or -1 is a dynamic dim. */
  readonly dims?: readonly (number | string)[];
}

/** A method's signature, as metadata endpoints and decoders need it. */
export interface MethodInfo {
  readonly name: string;
  readonly inputs: readonly MethodInput[];
  readonly outputs: readonly string[];
}
