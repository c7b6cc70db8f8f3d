/**
 * Dynamic batching and dispatch for the models of one servable version. Every model graph
 * (model × subgraph) has a FIFO of instance tasks. Whenever a device actor has a free slot,
 * the scheduler takes up to the graph's batch size of tasks from the head of a ready queue
 * (mixing requests), sends them as one batch to the least-busy actor, and scatters the
 * outputs back. A queue is ready when it holds a full batch or its oldest task has waited
 * `maxQueueDelayMs` (0 by default: go as soon as an actor is free). Tasks of requests that
 * already ended (deadline passed) are dropped when they reach the head.
 */
import { ServingError } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';
import type { BatchPlan } from './batch-plan.js';
import type { Device } from './device.js';
import type { SequenceRow } from './protocol.js';
import type { SequenceStep } from './sequences.js';
import type { BatchObserver } from '../engine/serving-metrics.js';
import { debugScheduler } from '../engine/logger.js';

/** Where the scheduler gets devices from (a DeviceGroup). */
export interface DeviceSource {
  /** False once no device is up or coming back: queued work fails with E_UNAVAILABLE. */
  readonly available: boolean;
  /** A ready device with a free slot, or undefined when none has room now. */
  pick(): Device | undefined;
  /** Why `available` is false (absent: the generic message). */
  unavailableReason?(): string;
}

/** What the scheduler needs to know of the request a task belongs to. */
export interface RequestState {
  /** Set once the request has been answered (success, error or deadline). */
  done: boolean;
}

/** A batch whose actor died is retried once on another (or the restarted) actor. */
export const MAX_ATTEMPTS = 2;

interface Task {
  readonly inputs: readonly Tensor[];
  readonly request: RequestState;
  readonly signature: string;
  readonly enqueuedAt: number;
  /** For a stateful model: the sequence step this instance is. */
  readonly step?: SequenceStep;
  attempts: number;
  resolve(outputs: Tensor[]): void;
  reject(err: ServingError): void;
}

class TaskQueue {
  private items: (Task | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  peek(): Task | undefined {
    return this.items[this.head];
  }

  push(t: Task): void {
    this.items.push(t);
  }

  unshift(t: Task): void {
    if (this.head > 0) this.items[--this.head] = t;
    else this.items.unshift(t);
  }

  shift(): Task | undefined {
    const t = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return t;
  }

  /** The queued tasks, oldest first (a copy). */
  list(): Task[] {
    return this.items.slice(this.head) as Task[];
  }

  /** Removes the tasks in `gone`, keeping the order of the others. */
  remove(gone: ReadonlySet<Task>): void {
    if (gone.size === 0) return;
    this.items = this.list().filter((t) => !gone.has(t));
    this.head = 0;
  }

  drain(): Task[] {
    const rest = this.items.slice(this.head) as Task[];
    this.items = [];
    this.head = 0;
    return rest;
  }
}

interface GraphQueue {
  readonly model: number;
  readonly subgraph: number;
  readonly plan: BatchPlan;
  readonly tasks: TaskQueue;
  timer: NodeJS.Timeout | undefined;
}

export interface SchedulerStats {
  batches: number;
  instances: number;
  /** batch size → number of batches of that size (padding not counted). */
  readonly batchSizes: Map<number, number>;
  /** device id → batches sent to it. */
  readonly batchesByDevice: Map<number, number>;
  retried: number;
}

export class ModelScheduler {
  private readonly queues: GraphQueue[];
  private readonly byGraph: GraphQueue[][];
  private rr = 0;
  private pumping = false;
  private pumpAgain = false;
  private pumpScheduled = false;
  private closedWith: ServingError | undefined;
  readonly stats: SchedulerStats = { batches: 0, instances: 0, batchSizes: new Map(), batchesByDevice: new Map(), retried: 0 };

  constructor(
    private readonly group: DeviceSource,
    plans: readonly (readonly BatchPlan[])[],
    private readonly observer?: BatchObserver,
  ) {
    this.byGraph = plans.map((subs, model) =>
      subs.map((plan, subgraph) => ({ model, subgraph, plan, tasks: new TaskQueue(), timer: undefined })),
    );
    this.queues = this.byGraph.flat();
  }

  /** Instances waiting in the queues (for the queue-depth gauge). */
  get queued(): number {
    let n = 0;
    for (const q of this.queues) n += q.tasks.size;
    return n;
  }

  plan(model: number, subgraph: number): BatchPlan {
    return this.byGraph[model]![subgraph]!.plan;
  }

  /**
   * Queues one instance for a model graph. Throws (synchronously, as a rejected promise) a
   * per-instance error when the inputs cannot feed the model.
   */
  submit(
    model: number,
    subgraph: number,
    inputs: readonly Tensor[],
    request: RequestState,
    labels?: readonly (string | undefined)[],
    step?: SequenceStep,
  ): Promise<Tensor[]> {
    const q = this.byGraph[model]![subgraph]!;
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (!this.group.available) return Promise.reject(this.unavailable());
    try {
      q.plan.check(inputs, labels);
    } catch (err) {
      // A refused first step leaves nothing to continue: the sequence's later steps are refused too.
      if (step?.start) {
        const seq = step.sequence;
        seq.registry.lose(seq, new ServingError('E_INVALID_ARGUMENT', `${seq.label} of ${seq.registry.tag} was dropped: its first step was refused (${(err as Error).message})`));
      }
      return Promise.reject(err);
    }
    return new Promise<Tensor[]>((resolve, reject) => {
      q.tasks.push({ inputs, request, signature: q.plan.signature(inputs), enqueuedAt: performance.now(), attempts: 0, resolve, reject, ...(step ? { step } : {}) });
      this.schedulePump();
    });
  }

  /**
   * Pumps in the check phase of this event-loop turn (setImmediate), once every request whose
   * bytes arrived in this turn's poll phase has been decoded and queued: those requests share
   * batches. A microtask would cut a batch after each request's callback, sending batches of
   * one while a slot was free (measured with perf/engine-hot-path.ts and the REST load: mean
   * batch 9 → 13 and ~7 % more requests/s on `add` at c=64).
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Answers every queued task with `err` and refuses new ones (server stopping). */
  close(err: ServingError): void {
    this.closedWith = err;
    this.failQueued(err);
  }

  /** Dispatches every ready batch that a free device slot can take. */
  pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        if (!this.group.available) {
          this.failQueued(this.unavailable());
          return;
        }
        this.pumpOnce();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private pumpOnce(): void {
    const n = this.queues.length;
    let idle = 0;
    // Visit queues round robin; stop after a full round without dispatching anything.
    while (idle < n) {
      const q = this.queues[this.rr]!;
      this.rr = (this.rr + 1) % n;
      if (!this.readyToDispatch(q)) {
        idle++;
        continue;
      }
      if (q.plan.stateful) {
        if (this.dispatchSequenced(q)) idle = 0;
        else idle++;
        continue;
      }
      const actor = this.group.pick();
      if (!actor) return;
      this.dispatch(q, actor);
      idle = 0;
    }
  }

  private readyToDispatch(q: GraphQueue): boolean {
    while (q.tasks.size > 0 && q.tasks.peek()!.request.done) q.tasks.shift();
    if (q.tasks.size === 0) return false;
    if (q.tasks.size >= q.plan.batchSize || q.plan.maxQueueDelayMs === 0) return true;
    const waited = performance.now() - q.tasks.peek()!.enqueuedAt;
    if (waited >= q.plan.maxQueueDelayMs) return true;
    if (!q.timer) {
      q.timer = setTimeout(() => {
        q.timer = undefined;
        this.pump();
      }, q.plan.maxQueueDelayMs - waited);
    }
    return false;
  }

  private dispatch(q: GraphQueue, actor: Device): void {
    const batch: Task[] = [];
    const signature = q.tasks.peek()!.signature;
    while (batch.length < q.plan.batchSize && q.tasks.size > 0) {
      const t = q.tasks.peek()!;
      if (t.request.done) {
        q.tasks.shift();
        continue;
      }
      if (t.signature !== signature) break;
      batch.push(q.tasks.shift()!);
    }
    this.send(q, actor, batch);
  }

  /**
   * A stateful model's queue: a batch goes to one device actor and holds at most one step per
   * sequence. A sequence's steps go to the actor that holds its state, in the order they were
   * queued; a start goes to the least-busy actor, which then holds the state. Steps of lost
   * sequences are answered with why. Returns whether a batch was sent.
   */
  private dispatchSequenced(q: GraphQueue): boolean {
    const failed = new Set<Task>();
    let actor: Device | undefined;
    for (const t of q.tasks.list()) {
      const seq = t.step!.sequence;
      if (t.request.done) {
        failed.add(t);
      } else if (seq.lost || seq.device?.state === 'dead') {
        if (!seq.lost) seq.registry.lose(seq, new ServingError('E_ACTOR_DIED', `${seq.label} of ${seq.registry.tag} was lost: the device actor holding its state died; start it again`));
        failed.add(t);
        t.reject(seq.lost!);
      } else if (!actor && seq.device && seq.device.state === 'ready' && seq.device.hasFreeSlot()) {
        actor = seq.device;
      } else if (!actor && !seq.device && t.step!.start) {
        actor = this.group.pick();
      }
    }
    q.tasks.remove(failed);
    if (!actor) return false;
    const batch: Task[] = [];
    const seen = new Set<SequenceStep['sequence']>();
    let signature: string | undefined;
    for (const t of q.tasks.list()) {
      if (batch.length >= q.plan.batchSize) break;
      const { sequence: seq, start } = t.step!;
      // One step per sequence per batch; a step skipped holds back that sequence's later steps.
      const fits = !seen.has(seq) && (seq.device ? seq.device === actor : start) && (signature === undefined || t.signature === signature);
      seen.add(seq);
      if (!fits) continue;
      signature = t.signature;
      batch.push(t);
    }
    q.tasks.remove(new Set(batch));
    if (batch.length === 0) return false;
    this.send(q, actor, batch);
    return true;
  }

  private send(q: GraphQueue, actor: Device, batch: Task[]): void {
    if (q.timer && q.tasks.size === 0) {
      clearTimeout(q.timer);
      q.timer = undefined;
    }
    const sentAt = performance.now();
    for (const t of batch) {
      t.attempts++;
      this.observer?.queued(q.plan.metricLabel, (sentAt - t.enqueuedAt) / 1000);
    }
    if (debugScheduler.enabled) debugScheduler('%s: batch of %d -> device %d', q.plan.tag, batch.length, actor.deviceId);
    const s = this.stats;
    s.batches++;
    s.instances += batch.length;
    s.batchSizes.set(batch.length, (s.batchSizes.get(batch.length) ?? 0) + 1);
    s.batchesByDevice.set(actor.deviceId, (s.batchesByDevice.get(actor.deviceId) ?? 0) + 1);

    let inputs;
    try {
      inputs = q.plan.assemble(batch.map((t) => t.inputs));
    } catch (err) {
      for (const t of batch) t.reject(err as ServingError);
      return;
    }
    const steps = q.plan.stateful ? batch.map((t) => t.step!) : undefined;
    let rows: SequenceRow[] | undefined;
    if (steps) {
      rows = steps.map((s) => ({ handle: s.sequence.handle, start: s.start, end: s.end }));
      if (q.plan.padded) while (rows.length < q.plan.batchSize) rows.push({ handle: 0, start: false, end: false });
      steps[0]!.sequence.registry.sent(steps, actor);
    }
    actor.run(q.model, q.subgraph, inputs, rows).then(
      (result) => {
        if (steps) steps[0]!.sequence.registry.answered(steps, undefined);
        this.observer?.batch(q.plan.metricLabel, batch.length, (performance.now() - sentAt) / 1000);
        let outputs: Tensor[][];
        try {
          outputs = q.plan.split(result.outputs, batch.length);
        } catch (err) {
          for (const t of batch) t.reject(err as ServingError);
          return;
        } finally {
          result.release();
        }
        batch.forEach((t, i) => t.resolve(outputs[i]!));
      },
      (err: ServingError) => {
        if (steps) {
          // State lives in one actor: a step is never retried elsewhere.
          steps[0]!.sequence.registry.answered(steps, err);
          for (const t of batch) t.reject(err);
          return;
        }
        if (err.code === 'E_ACTOR_DIED') {
          // Put retryable tasks back at the head, oldest first, then let the pump place them.
          for (let i = batch.length - 1; i >= 0; i--) {
            const t = batch[i]!;
            if (t.request.done) continue;
            if (t.attempts < MAX_ATTEMPTS) {
              this.stats.retried++;
              q.tasks.unshift(t);
            } else {
              t.reject(new ServingError('E_ACTOR_DIED', `${err.message}; the batch was already retried once, giving up`));
            }
          }
          this.pump();
          return;
        }
        for (const t of batch) t.reject(err);
      },
    );
  }

  private unavailable(): ServingError {
    return new ServingError('E_UNAVAILABLE', this.group.unavailableReason?.() ?? 'no device actor of this servable is running (all failed to restart)');
  }

  private failQueued(err: ServingError): void {
    for (const q of this.queues) {
      clearTimeout(q.timer);
      q.timer = undefined;
      for (const t of q.tasks.drain()) if (!t.request.done) t.reject(err);
    }
  }
}
