/**
 * The stage pool: piscina threads that run a servable's TS stage functions off the main
 * thread (MindSpore's num_parallel_workers). A stage function may call `model.call`; those
 * calls come back over a per-task MessageChannel (stage-model-calls.ts) and go through the
 * model scheduler, so they batch with the rest of the traffic. Each thread also has a control
 * plane (load, health, stats, drain) reached through comlink (stage-worker-links.ts).
 * The messages of this boundary are in stage-protocol.ts.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { CancelSignal } from '../engine/cancellation.js';
import { ServingError, toServingError } from '../engine/errors.js';
import type { FunctionStage } from '../engine/method-graph.js';
import type { Tensor } from '../engine/tensor.js';
import { type ModelCaller, serveModelCalls } from './stage-model-calls.js';
import {
  STAGE_PROTOCOL_VERSION,
  type ModelCallChannel,
  type StageResult,
  type StageTask,
  type StageWorkerData,
  type StageWorkerHealth,
  type StageWorkerStats,
  type StreamControl,
  type StreamPartial,
  type StreamStageTask,
} from './stage-protocol.js';
import { StageWorkerLinks } from './stage-worker-links.js';

export type { ModelCaller } from './stage-model-calls.js';

export interface StageRunOptions {
  /** Given when stage functions may call models (`model.call`). */
  readonly callModel?: ModelCaller | undefined;
  /** Fires when the task's request has ended (answered, past its deadline, or cancelled). */
  readonly requestEnded?: CancelSignal;
}

export interface StreamRunOptions extends StageRunOptions {
  /** The request's parameters: the generator's `ctx.parameters`. */
  readonly parameters?: Readonly<Record<string, string | number | boolean>> | undefined;
}

/** A stream stage instance in flight (StagePool.runStream). */
export interface StreamRun {
  /** The reader took `count` more partial results: that much credit goes back to the generator. */
  consumed(count: number): void;
  /** Settles once the instance ended, after its last partial: undefined, or the error that ended it. */
  readonly done: Promise<ServingError | undefined>;
}

/** Credit is returned in batches of this many consumed partials (fewer messages than one per partial). */
const CREDIT_BATCH = 4;

export interface StagePoolOptions {
  /** How `model.call` requests travel; 'posted' unless measuring (perf/stage-model-call.ts). */
  readonly modelCalls?: ModelCallChannel;
  /** Where a thread's failure outside any task is reported (stderr when not given). */
  readonly log?: (line: string) => void;
  /** Tasks each thread runs at once (default TASKS_PER_THREAD). */
  readonly tasksPerThread?: number;
}

/** The pool's figures: piscina's queue and every live thread's own stats. */
export interface StagePoolStats {
  /** Tasks waiting for a free slot on a thread. */
  readonly queued: number;
  readonly threads: readonly StageWorkerStats[];
}

/**
 * Async stages (image decoding by sharp, model.call) overlap on one thread: 16 at once gave the
 * resnet servable 6-10 % more requests/s and a third lower p99 than 4 at 64 requests in flight
 * (sharp's work runs on the libuv pool; the stage thread mostly waits).
 */
export const TASKS_PER_THREAD = 16;

/**
 * Tasks at once per thread of a servable with a stream stage: a generation holds its task for
 * the whole stream, mostly waiting on model.call and on its reader, so 16 would cap the
 * concurrent generations per thread, and with it how many decode steps batch together.
 */
export const STREAM_TASKS_PER_THREAD = 128;

/** Tasks in flight that can be skipped once their request ends; more run without the check. */
const ENDED_FLAGS = 4096;

/** How long a thread may take to start and announce its control port (module import included). */
const THREAD_START_TIMEOUT_MS = 60_000;

const WORKER_ENTRY = new URL('./stage-worker.js', import.meta.url).href;

export class StagePool {
  private readonly pool: Piscina<StageTask, StageResult>;
  private readonly links: StageWorkerLinks;
  private readonly modelCalls: ModelCallChannel;
  /** Shared with the workers: flag i = 1 once the request of the task holding slot i ended. */
  private readonly ended = new Int32Array(new SharedArrayBuffer(4 * ENDED_FLAGS));
  private readonly freeFlags: number[] = Array.from({ length: ENDED_FLAGS }, (_, i) => ENDED_FLAGS - 1 - i);
  /** The task holding each flag (a late hook of an earlier holder must not touch it). */
  private readonly flagOwner: (object | undefined)[] = new Array<object | undefined>(ENDED_FLAGS);
  /** Set by drain() and stop(): run() answers E_STOPPED from then on. */
  private closing = false;
  /** Set by stop(): tasks that fail from then on were cut off, and are answered E_STOPPED. */
  private stopping = false;
  private tasksInFlight = 0;
  /** Resolved (and emptied) when the last task in flight settles. */
  private idleWaiters: (() => void)[] = [];

  constructor(
    threads: number,
    maxQueue: number,
    { modelCalls = 'posted', log = (line) => process.stderr.write(`${line}\n`), tasksPerThread = TASKS_PER_THREAD }: StagePoolOptions = {},
  ) {
    this.modelCalls = modelCalls;
    this.pool = new Piscina({
      filename: WORKER_ENTRY,
      workerData: { protocolVersion: STAGE_PROTOCOL_VERSION, ended: this.ended.buffer, modelCalls } satisfies StageWorkerData,
      minThreads: threads,
      maxThreads: threads,
      maxQueue,
      concurrentTasksPerWorker: tasksPerThread,
      // An idle thread must read its control port; 'sync' would block it in Atomics.wait. A stage
      // task's round trip is the same either way within this machine's noise (perf/stage-model-call.ts,
      // p50 sync vs disabled: 21-30 vs 24-30 µs alone, 324-333 vs 326-346 µs at 16 in flight).
      atomics: 'disabled',
      idleTimeout: 60_000,
      execArgv: [],
      closeTimeout: 10_000,
    });
    this.links = new StageWorkerLinks(this.pool, threads);
    // piscina emits 'error' when a thread dies with no task in flight (a stage function's timer
    // that throws after it returned, say) and starts a new thread; unheard, the event would
    // take the whole server down.
    // While the pool stops, a thread ended mid-task may still post a message piscina no longer
    // expects ("Unexpected message from Worker"): that is the cut-off itself, not a failure.
    this.pool.on('error', (err: unknown) => {
      if (!this.stopping) log(`a stage thread failed outside any task and was replaced: ${toServingError(err).message}`);
    });
  }

  /**
   * Runs `stage` on `instances`; resolves with one entry per instance (outputs or error).
   * `callModel` is given when stage functions may call models. With `requestEnded`, a task
   * still queued (or between instances) when its request ends is skipped by the worker: under
   * overload, requests past their deadline do not keep the stage threads busy.
   */
  async run(
    configPath: string,
    stage: FunctionStage,
    instances: readonly (readonly Tensor[])[],
    { callModel, requestEnded }: StageRunOptions = {},
  ): Promise<(Tensor[] | ServingError)[]> {
    if (this.closing) return instances.map(() => this.drainingError(stage));
    const result = await this.track(requestEnded, (endedFlag) =>
      this.runOnPool(
        {
          kind: 'run',
          configPath,
          functionName: stage.functionName,
          tag: stage.tag,
          outputsCount: stage.outputsCount,
          batched: stage.batchSize !== undefined,
          instances,
          ...(endedFlag !== undefined ? { endedFlag } : {}),
        },
        stage,
        callModel,
      ),
    );
    return result.map((r) => (r.kind === 'error' ? ServingError.fromData(r.error) : r.kind === 'outputs' ? (r.outputs as Tensor[]) : new ServingError('E_INTERNAL', `${stage.tag}: a stream result for a run task`)));
  }

  /**
   * Runs one instance through a stream stage (StageOptions.stream): `onPartial` gets each
   * partial result as the worker sends it; the generator is not advanced while STREAM_CREDIT
   * of them are not yet `consumed()` (the reader's pace). When `requestEnded` fires the worker
   * stops the generator at its next step.
   */
  runStream(configPath: string, stage: FunctionStage, inputs: readonly Tensor[], options: StreamRunOptions, onPartial: (outputs: Tensor[]) => void): StreamRun {
    if (this.closing) return { consumed: () => undefined, done: Promise.resolve(this.drainingError(stage)) };
    if (options.requestEnded?.aborted) return { consumed: () => undefined, done: Promise.resolve(new ServingError('E_CANCELLED', `${stage.tag}: the request had ended before this stage ran`)) };
    const { port1, port2 } = new MessageChannel();
    let received = 0;
    let expected: number | undefined;
    let outcome: ServingError | undefined;
    let owed = 0;
    let finish!: (outcome: ServingError | undefined) => void;
    const done = new Promise<ServingError | undefined>((resolve) => (finish = resolve));
    const cancel = (): void => port1.postMessage({ kind: 'cancel' } satisfies StreamControl);
    const settle = (): void => {
      port1.close();
      options.requestEnded?.removeEventListener('abort', cancel);
      finish(outcome);
    };
    // The task's reply may overtake partials still on their way: the outcome waits for the count it names.
    port1.on('message', (m: StreamPartial) => {
      received++;
      onPartial(m.outputs as Tensor[]);
      if (received === expected) settle();
    });
    options.requestEnded?.addEventListener('abort', cancel);
    const task = (endedFlag: number | undefined): StreamStageTask => ({
      kind: 'stream',
      configPath,
      functionName: stage.functionName,
      tag: stage.tag,
      outputsCount: stage.outputsCount,
      inputs,
      parameters: options.parameters ?? {},
      partials: port2,
      ...(endedFlag !== undefined ? { endedFlag } : {}),
    });
    void this.track(options.requestEnded, (flag) => this.runOnPool(task(flag), stage, options.callModel, [port2])).then(([r]) => {
      if (r?.kind === 'error') outcome = ServingError.fromData(r.error);
      expected = r?.kind === 'outputs' ? 0 : (r?.partials ?? 0);
      if (r?.kind === 'error' && r.partials === undefined) return settle(); // the task failed as a whole: no partial is coming
      if (received >= expected) settle();
    });
    return {
      done,
      consumed: (count) => {
        owed += count;
        // Credit goes back in batches: the generator waits only while more than
        // STREAM_CREDIT - CREDIT_BATCH of its partials are unconsumed, never when none are.
        if (owed >= CREDIT_BATCH) {
          port1.postMessage({ kind: 'credit', count: owed } satisfies StreamControl);
          owed = 0;
        }
      },
    };
  }

  private drainingError(stage: FunctionStage): ServingError {
    return new ServingError('E_STOPPED', `${stage.tag}: the stage pool is draining`);
  }

  /**
   * Runs `work` as a task in flight (drain waits for it), with a "request ended" flag slot
   * when `requestEnded` is given and one is free: the worker skips (or stops) the task once its
   * request has ended.
   */
  private async track<T>(requestEnded: CancelSignal | undefined, work: (endedFlag: number | undefined) => Promise<T>): Promise<T> {
    const flag = requestEnded ? this.freeFlags.pop() : undefined;
    const owner = {};
    if (flag !== undefined) {
      this.flagOwner[flag] = owner;
      requestEnded!.addEventListener('abort', () => {
        if (this.flagOwner[flag] === owner) Atomics.store(this.ended, flag, 1);
      });
    }
    this.tasksInFlight++;
    try {
      return await work(flag);
    } finally {
      if (flag !== undefined) {
        this.flagOwner[flag] = undefined;
        Atomics.store(this.ended, flag, 0);
        this.freeFlags.push(flag);
      }
      if (--this.tasksInFlight === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const wake of waiters) wake();
      }
    }
  }

  private async runOnPool(task: StageTask, stage: FunctionStage, callModel: ModelCaller | undefined, transferList: MessagePort[] = []): Promise<StageResult> {
    if (!callModel) return this.runTask(task, stage, transferList);
    const { port1, port2 } = new MessageChannel();
    serveModelCalls(port1, this.modelCalls, callModel);
    try {
      return await this.runTask({ ...task, modelCalls: port2 }, stage, [...transferList, port2]);
    } finally {
      port1.close();
    }
  }

  private async runTask(task: StageTask, stage: FunctionStage, transferList: MessagePort[]): Promise<StageResult> {
    try {
      return await this.pool.run(task, transferList.length > 0 ? { transferList } : {});
    } catch (err) {
      const instances = task.kind === 'stream' ? 1 : task.instances.length;
      // stop() ended the threads under it ("Terminating worker thread", "The task has been aborted").
      if (this.stopping) return Array.from({ length: instances }, () => ({ kind: 'error', error: { code: 'E_STOPPED', message: `${stage.tag} was cut off: the server is stopping` } }));
      // The task as a whole failed: import error, queue full, worker crash (piscina restarts it).
      const e = toServingError(err, 'E_STAGE_FAILED');
      const message = /queue/i.test(e.message) ? `stage pool overloaded: ${e.message}` : `${stage.tag} failed: ${e.message}`;
      const code = /queue/i.test(e.message) ? 'E_OVERLOADED' : e.code;
      return Array.from({ length: instances }, () => ({ kind: 'error', error: { code, message } }));
    }
  }

  /**
   * Waits for the threads to start and has each import the config module (tsx compile, the
   * stage functions' own imports), so the first requests do not pay for it. Fails like a load
   * error when the module cannot be imported in a worker.
   */
  async warmup(configPath: string): Promise<void> {
    const links = await this.links.ready(THREAD_START_TIMEOUT_MS);
    await Promise.all(links.map((link) => link.load(configPath)));
  }

  /** Each live thread's health (a thread busy in a synchronous stage function answers after it). */
  health(): Promise<StageWorkerHealth[]> {
    return Promise.all(this.links.all().map((link) => link.health()));
  }

  async stats(): Promise<StagePoolStats> {
    const threads = await Promise.all(this.links.all().map((link) => link.stats()));
    return { queued: this.pool.queueSize, threads };
  }

  /**
   * Finishes the tasks in hand (queued ones included) for up to `timeoutMs` and takes no new
   * ones (run() answers E_STOPPED), then drains every thread and stops the pool. Resolves with
   * each thread's final stats; or, when tasks outlive the timeout, stops the pool under them
   * (stop(): each is answered E_STOPPED) and resolves with undefined.
   */
  async drain(timeoutMs = Number.POSITIVE_INFINITY): Promise<StageWorkerStats[] | undefined> {
    this.closing = true;
    if (!(await this.idle(timeoutMs))) {
      await this.stop();
      return undefined;
    }
    const final = await Promise.all(this.links.all().map((link) => link.drain()));
    await this.destroy();
    return final;
  }

  /**
   * Stops now: takes no new tasks and ends the threads under the tasks in flight; each of those
   * is answered E_STOPPED (a synchronous stage function cannot be interrupted any other way).
   */
  stop(): Promise<void> {
    this.closing = true;
    this.stopping = true;
    return this.destroy();
  }

  /** Resolves true once no task is in flight, false if some still are after `timeoutMs`. */
  private idle(timeoutMs: number): Promise<boolean> {
    if (this.tasksInFlight === 0) return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => resolve(false), timeoutMs) : undefined;
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Ends the threads and the control links (stop() is the way with tasks in flight). */
  destroy(): Promise<void> {
    this.links.close();
    return this.pool.destroy();
  }
}
