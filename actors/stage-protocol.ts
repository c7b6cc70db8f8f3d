/**
 * The thread protocol of the stage pool boundary: every message between the stage pool (main
 * thread) and its stage workers (piscina threads), in both directions, as tagged unions.
 *
 * Three channels cross the boundary:
 * - piscina's own task channel: a `StageTask` in, a `StageResult` back;
 * - the worker's control plane: announced once on `parentPort` (`StageWorkerAnnouncement`),
 *   then comlink calls on the announced port (`StageWorkerControl`);
 * - a task's `model.call` channel: `ModelCallRequest` out, `ModelCallReply` back;
 * - a stream task's partial results channel: `StreamPartial` out, `StreamControl` back.
 *
 * Stage workers are threads of this process and stay local. Each message says whether it may
 * cross a network later: `model.call` requests may be forwarded by the main thread to remote
 * devices once agents exist, so the call they carry (`ModelCall`) is plain data.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ServingErrorData } from '../engine/errors.js';
import type { SequenceRequest } from '../engine/sequence.js';
import type { Tensor } from '../engine/tensor.js';

/**
 * Version of this protocol. A worker whose pool speaks another version (StageWorkerData)
 * refuses to run (a stale stage-worker.js beside a newer pool, or the reverse); bump it with any
 * change to the shapes below.
 */
export const STAGE_PROTOCOL_VERSION = 3;

/** How a task's `model.call` requests travel (see stage-model-calls.ts for why 'posted' is the default). */
export type ModelCallChannel = 'posted' | 'comlink';

/** Piscina `workerData` of every stage worker. Local only (set when the thread starts). */
export interface StageWorkerData {
  /** The pool's STAGE_PROTOCOL_VERSION; the worker checks it against its own. */
  readonly protocolVersion: number;
  /** One Int32 per task slot, set to 1 by the pool when the slot's request has ended. */
  readonly ended: SharedArrayBuffer;
  readonly modelCalls: ModelCallChannel;
}

// ---- piscina task channel (main -> worker: StageTask; worker -> main: StageResult) ----

/** Runs one stage function on a list of instances. Local only: a stage runs on this host. */
export interface RunStageTask {
  readonly kind: 'run';
  readonly configPath: string;
  readonly functionName: string;
  readonly tag: string;
  readonly outputsCount: number;
  /** true: the function takes a list of instances; false: one instance's inputs as arguments. */
  readonly batched: boolean;
  readonly instances: readonly (readonly Tensor[])[];
  /** Channel for `model.call` (present when the servable declares models); transferred. */
  readonly modelCalls?: MessagePort;
  /**
   * Index into the pool's shared "request ended" flags (StageWorkerData.ended): a task whose
   * flag is set when the worker gets to it is skipped (its request was answered already).
   */
  readonly endedFlag?: number;
}

/**
 * Runs one instance through a stream stage (an async generator function). Local only. Its
 * partial results travel on `partials` as they are yielded; the task's reply (one
 * InstanceResult) says how many were sent, so that the pool hands the outcome on only after
 * the last of them (the two ports are not ordered with each other).
 */
export interface StreamStageTask extends Omit<RunStageTask, 'kind' | 'batched' | 'instances'> {
  readonly kind: 'stream';
  readonly inputs: readonly Tensor[];
  /** The request's parameters (the generator's `ctx.parameters`). */
  readonly parameters: Readonly<Record<string, string | number | boolean>>;
  /** The partial-results channel; transferred. */
  readonly partials: MessagePort;
}

/**
 * What piscina carries to a worker. The start-up warm-up that used to be a task is
 * `StageWorkerControl.load`, which reaches every thread (a task reaches whichever piscina picks).
 */
export type StageTask = RunStageTask | StreamStageTask;

/** One instance's outcome. Local only. */
export type InstanceResult =
  | { readonly kind: 'outputs'; readonly outputs: readonly Tensor[] }
  /** A stream instance ended (its generator returned, or was stopped): `partials` were sent. */
  | { readonly kind: 'streamed'; readonly partials: number }
  /** `partials`: of a stream instance, the partial results sent before the error. */
  | { readonly kind: 'error'; readonly error: ServingErrorData; readonly partials?: number };

/** A run task's reply: one entry per instance, in order. */
export type StageResult = readonly InstanceResult[];

// ---- control plane (worker -> main once on parentPort; then comlink calls main -> worker) ----

/**
 * Posted by a worker on `parentPort` when its module is evaluated (piscina re-emits it as the
 * pool's 'message' event). Local only.
 */
export type StageWorkerAnnouncement =
  | {
      readonly kind: 'stage-worker.ready';
      readonly protocolVersion: number;
      readonly threadId: number;
      /** The worker exposes its StageWorkerControl here (comlink); transferred. */
      readonly control: MessagePort;
    }
  | {
      /** The pool speaks another protocol version: every task this worker gets fails with `reason`. */
      readonly kind: 'stage-worker.refused';
      readonly protocolVersion: number;
      readonly threadId: number;
      readonly reason: string;
    };

/** A control call's outcome. Errors travel as data so that their codes survive (comlink keeps only the message of a thrown Error). */
export type ControlReply<T> = { readonly kind: 'ok'; readonly value: T } | { readonly kind: 'error'; readonly error: ServingErrorData };

export interface StageWorkerHealth {
  readonly threadId: number;
  readonly protocolVersion: number;
  readonly state: 'running' | 'draining';
  readonly tasksInFlight: number;
  readonly uptimeMs: number;
}

export interface StageWorkerStats {
  readonly threadId: number;
  /** Run tasks answered (including those whose instances failed or were skipped). */
  readonly tasksRun: number;
  readonly instancesRun: number;
  readonly instancesFailed: number;
  /** Instances not run because their request had ended (deadline, cancel). */
  readonly instancesSkipped: number;
  /** `model.call` requests sent by this thread's stage functions. */
  readonly modelCalls: number;
  /** Config modules imported by this thread (servable_config.ts paths). */
  readonly modulesLoaded: readonly string[];
}

/**
 * What a stage worker exposes over comlink on its announced control port. Local only (stage
 * workers stay on this host); every method answers with plain data.
 */
export interface StageWorkerControl {
  /** Imports a config module (tsx compile, the stage functions' imports) ahead of the first task. */
  load(configPath: string): Promise<ControlReply<null>>;
  health(): StageWorkerHealth;
  stats(): StageWorkerStats;
  /**
   * Stops taking tasks (a run task that arrives later fails with E_STOPPED) and answers with the
   * final stats once the tasks in flight have ended.
   */
  drain(): Promise<StageWorkerStats>;
}

// ---- partial results of one stream task (worker -> main: StreamPartial; main -> worker: StreamControl) ----

/**
 * Partial results a stream task may send before it waits for credit: the generator is not
 * advanced while this many are unconsumed by the request's reader (back-pressure).
 */
export const STREAM_CREDIT = 16;

/** Worker -> main: one `yield` of the generator, as `outputsCount` tensors. Local only. */
export interface StreamPartial {
  readonly kind: 'partial';
  readonly outputs: readonly Tensor[];
}

/**
 * Main -> worker. 'credit': the reader consumed `count` more partial results; 'cancel': the
 * request ended (client gone, deadline): abort `ctx.signal` and stop the generator at its
 * next step. Local only.
 */
export type StreamControl = { readonly kind: 'credit'; readonly count: number } | { readonly kind: 'cancel' };

// ---- model.call channel of one task ('posted': worker -> main requests, main -> worker replies) ----

/**
 * The call a stage function makes through `model.call`. The main thread hands it to the model
 * scheduler; once agents exist it may forward it to a remote device, so it must stay plain
 * data (no ports, no functions) that a network codec can carry.
 */
export interface ModelCall {
  readonly modelKey: string;
  readonly subgraph: number;
  readonly instances: readonly (readonly Tensor[])[];
  /** A stateful model's call: the sequence its instances are steps of (`model.call(x, { sequence })`). */
  readonly sequence?: SequenceRequest;
  /**
   * The stage-function instance that made the call (an id unique in the process): the
   * sequences the call starts are ended when that scope closes, if it has not ended them.
   */
  readonly scope?: string;
}

/**
 * The sequence controls of a stage function, plain data like `ModelCall`: `model.endSequence`
 * (frees a live sequence's state without a step), and the end of a stage-function instance
 * (ends the sequences its calls started and did not end).
 */
export type ModelSequenceControl =
  | { readonly kind: 'model.endSequence'; readonly modelKey: string; readonly sequenceId: string | number }
  | { readonly kind: 'model.closeScope'; readonly scope: string };

/** Worker -> main. Local (the thread hop); the `ModelCall` it carries may travel on to a remote device. */
export type ModelCallRequest =
  | (ModelCall & {
      readonly kind: 'model.call';
      /** Correlates the reply; unique per task channel. */
      readonly id: number;
    })
  | (ModelSequenceControl & { readonly id: number });

/** Main -> worker. Local; its outputs may have come back from a remote device. `done` answers a control. */
export type ModelCallReply =
  | { readonly kind: 'outputs'; readonly id: number; readonly outputs: readonly (readonly Tensor[])[] }
  | { readonly kind: 'done'; readonly id: number }
  | { readonly kind: 'error'; readonly id: number; readonly error: ServingErrorData };

/** What the main thread exposes per task when the channel is comlink: a call and a control, answering with data. */
export interface ModelCallService {
  call(call: ModelCall): Promise<ModelCallOutcome>;
  control(control: ModelSequenceControl): Promise<ModelCallOutcome>;
}

export type ModelCallOutcome =
  | { readonly kind: 'outputs'; readonly outputs: readonly (readonly Tensor[])[] }
  | { readonly kind: 'done' }
  | { readonly kind: 'error'; readonly error: ServingErrorData };
