/**
 * Messages between the stage pool (main thread) and stage workers (piscina threads), and the
 * model-call channel a stage function uses for `model.call`.
 */
import type { ServingErrorData } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';
import type { MessagePort } from 'node:worker_threads';

export interface StageTask {
  readonly configPath: string;
  /** Only import the config module (start-up warm-up); the other fields are ignored. */
  readonly warmup?: boolean;
  readonly functionName: string;
  readonly tag: string;
  readonly outputsCount: number;
  /** true: the function takes a list of instances; false: one instance's inputs as arguments. */
  readonly batched: boolean;
  readonly instances: readonly (readonly Tensor[])[];
  /** Channel for `model.call` (present when the servable declares models). */
  readonly port?: MessagePort;
  /**
   * Index into the pool's shared "request ended" flags (StageWorkerData.ended): a task whose
   * flag is set when the worker gets to it is skipped (its request was answered already).
   */
  readonly endedFlag?: number;
}

/** Piscina `workerData` of every stage worker. */
export interface StageWorkerData {
  /** One Int32 per task slot, set to 1 by the pool when the slot's request has ended. */
  readonly ended: SharedArrayBuffer;
}

/** One entry per instance: its outputs, or why it failed. */
export type StageResult = readonly ({ readonly outputs: readonly Tensor[] } | { readonly error: ServingErrorData })[];

export interface ModelCallRequest {
  readonly id: number;
  readonly modelKey: string;
  readonly subgraph: number;
  readonly instances: readonly (readonly Tensor[])[];
}

export type ModelCallReply =
  | { readonly id: number; readonly outputs: readonly (readonly Tensor[])[] }
  | { readonly id: number; readonly error: ServingErrorData };
