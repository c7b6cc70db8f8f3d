/**
 * The stage pool: piscina threads that run a servable's TS stage functions off the main
 * thread (MindSpore's num_parallel_workers). A stage function may call `model.call`; those
 * calls come back over a per-task MessageChannel and go through the model scheduler, so they
 * batch with the rest of the traffic.
 */
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { CancelSignal } from '../engine/cancellation.js';
import { ServingError, toServingError } from '../engine/errors.js';
import type { FunctionStage } from '../engine/method-graph.js';
import type { Tensor } from '../engine/tensor.js';
import type { ModelCallReply, ModelCallRequest, StageResult, StageTask, StageWorkerData } from './stage-protocol.js';

export type ModelCaller = (request: ModelCallRequest) => Promise<Tensor[][]>;

export interface StageRunOptions {
  /** Given when stage functions may call models (`model.call`). */
  readonly callModel?: ModelCaller | undefined;
  /** Fires when the task's request has ended (answered, past its deadline, or cancelled). */
  readonly requestEnded?: CancelSignal;
}

/**
 * Async stages (image decoding by sharp, model.call) overlap on one thread: 16 at once gave the
 * resnet servable 6-10 % more requests/s and a third lower p99 than 4 at 64 requests in flight
 * (sharp's work runs on the libuv pool; the stage thread mostly waits).
 */
export const TASKS_PER_THREAD = 16;

/** Tasks in flight that can be skipped once their request ends; more run without the check. */
const ENDED_FLAGS = 4096;

const WORKER_ENTRY = new URL('./stage-worker.js', import.meta.url).href;

export class StagePool {
  private readonly pool: Piscina<StageTask, StageResult>;
  private readonly threads: number;
  /** Shared with the workers: flag i = 1 once the request of the task holding slot i ended. */
  private readonly ended = new Int32Array(new SharedArrayBuffer(4 * ENDED_FLAGS));
  private readonly freeFlags: number[] = Array.from({ length: ENDED_FLAGS }, (_, i) => ENDED_FLAGS - 1 - i);
  /** The task holding each flag (a late hook of an earlier holder must not touch it). */
  private readonly flagOwner: (object | undefined)[] = new Array(ENDED_FLAGS);

  constructor(threads: number, maxQueue: number) {
    this.threads = threads;
    this.pool = new Piscina({
      filename: WORKER_ENTRY,
      workerData: { ended: this.ended.buffer as SharedArrayBuffer } satisfies StageWorkerData,
      minThreads: threads,
      maxThreads: threads,
      maxQueue,
      concurrentTasksPerWorker: TASKS_PER_THREAD,
      idleTimeout: 60_000,
      execArgv: [],
      closeTimeout: 10_000,
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
    const flag = requestEnded ? this.freeFlags.pop() : undefined;
    const owner = {};
    if (flag !== undefined) {
      this.flagOwner[flag] = owner;
      requestEnded!.addEventListener('abort', () => {
        if (this.flagOwner[flag] === owner) Atomics.store(this.ended, flag, 1);
      });
    }
    try {
      return await this.runOnPool(configPath, stage, instances, callModel, flag);
    } finally {
      if (flag !== undefined) {
        this.flagOwner[flag] = undefined;
        Atomics.store(this.ended, flag, 0);
        this.freeFlags.push(flag);
      }
    }
  }

  private async runOnPool(
    configPath: string,
    stage: FunctionStage,
    instances: readonly (readonly Tensor[])[],
    callModel: ModelCaller | undefined,
    endedFlag: number | undefined,
  ): Promise<(Tensor[] | ServingError)[]> {
    const base = {
      configPath,
      functionName: stage.functionName,
      tag: stage.tag,
      outputsCount: stage.outputsCount,
      batched: stage.batchSize !== undefined,
      instances,
      ...(endedFlag !== undefined ? { endedFlag } : {}),
    };
    let result: StageResult;
    if (!callModel) {
      result = await this.runTask(base, stage);
    } else {
      const { port1, port2 } = new MessageChannel();
      port1.on('message', (req: ModelCallRequest) => {
        callModel(req).then(
          (outputs) => port1.postMessage({ id: req.id, outputs } satisfies ModelCallReply),
          (err: unknown) => port1.postMessage({ id: req.id, error: toServingError(err).toData() } satisfies ModelCallReply),
        );
      });
      try {
        result = await this.runTask({ ...base, port: port2 }, stage, [port2]);
      } finally {
        port1.close();
      }
    }
    return result.map((r) => ('error' in r ? ServingError.fromData(r.error) : (r.outputs as Tensor[])));
  }

  private async runTask(task: StageTask, stage: FunctionStage, transferList?: MessagePort[]): Promise<StageResult> {
    try {
      return await this.pool.run(task, transferList ? { transferList } : {});
    } catch (err) {
      // The task as a whole failed: import error, queue full, worker crash (piscina restarts it).
      const e = toServingError(err, 'E_STAGE_FAILED');
      const message = /queue/i.test(e.message) ? `stage pool overloaded: ${e.message}` : `${stage.tag} failed: ${e.message}`;
      const code = /queue/i.test(e.message) ? 'E_OVERLOADED' : e.code;
      return task.instances.map(() => ({ error: { code, message } }));
    }
  }

  /**
   * Starts the threads and has each import the config module (tsx compile, the stage
   * functions' own imports), so the first requests do not pay for it. Fails like a load error
   * when the module cannot be imported in a worker.
   */
  async warmup(configPath: string): Promise<void> {
    const task: StageTask = { configPath, warmup: true, functionName: '', tag: 'warm-up', outputsCount: 0, batched: false, instances: [] };
    await Promise.all(Array.from({ length: this.threads }, () => this.pool.run(task)));
  }

  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}

type MessagePort = import('node:worker_threads').MessagePort;
