/**
 * The stage pool: piscina threads that run a servable's TS stage functions off the main
 * thread (MindSpore's num_parallel_workers). A stage function may call `model.call`; those
 * calls come back over a per-task MessageChannel and go through the model scheduler, so they
 * batch with the rest of the traffic.
 */
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { ServingError, toServingError } from '../engine/errors.js';
import type { FunctionStage } from '../engine/method-graph.js';
import type { Tensor } from '../engine/tensor.js';
import type { ModelCallReply, ModelCallRequest, StageResult, StageTask } from './stage-protocol.js';

export type ModelCaller = (request: ModelCallRequest) => Promise<Tensor[][]>;

const WORKER_ENTRY = new URL('./stage-worker.js', import.meta.url).href;

export class StagePool {
  private readonly pool: Piscina<StageTask, StageResult>;
  private readonly threads: number;

  constructor(threads: number, maxQueue: number) {
    this.threads = threads;
    this.pool = new Piscina({
      filename: WORKER_ENTRY,
      minThreads: threads,
      maxThreads: threads,
      maxQueue,
      // Async stages (image decoding by sharp, model.call) overlap on one thread.
      concurrentTasksPerWorker: 4,
      idleTimeout: 60_000,
      execArgv: [],
      closeTimeout: 10_000,
    });
  }

  /**
   * Runs `stage` on `instances`; resolves with one entry per instance (outputs or error).
   * `callModel` is given when stage functions may call models.
   */
  async run(
    configPath: string,
    stage: FunctionStage,
    instances: readonly (readonly Tensor[])[],
    callModel: ModelCaller | undefined,
  ): Promise<(Tensor[] | ServingError)[]> {
    const base = {
      configPath,
      functionName: stage.functionName,
      tag: stage.tag,
      outputsCount: stage.outputsCount,
      batched: stage.batchSize !== undefined,
      instances,
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
