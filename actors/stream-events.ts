/**
 * The events of one `inferStream` request, as its reader pulls them: partial results and
 * per-instance errors pushed by the runtime as they happen, each instance's in order. An
 * event's `taken` hook runs when the reader takes it (a stream stage's credit goes back then,
 * so a reader that stops reading stops the generator). The iterator ends once every instance
 * finished; `return()` (the reader broke out of its loop) calls `onReturn`.
 */
import type { ServingError } from '../engine/errors.js';
import type { StreamEvent } from '../engine/inference.js';
import type { Instance } from '../engine/tensor.js';

interface Queued {
  readonly event: StreamEvent;
  readonly taken: (() => void) | undefined;
}

interface Waiter {
  resolve(result: IteratorResult<StreamEvent>): void;
  reject(err: ServingError): void;
}

const DONE: IteratorResult<StreamEvent> = Object.freeze({ done: true, value: undefined });

export class StreamEvents implements AsyncIterableIterator<StreamEvent> {
  private queue: Queued[] = [];
  private head = 0;
  private readonly waiters: Waiter[] = [];
  /** Instances not finished yet (finish() or abort()). */
  private readonly open: Set<number>;
  /** Set once nothing more is pushed. */
  private ended = false;
  /** The whole request's failure, given to the reader instead of events (nothing was pushed before it). */
  private failure: ServingError | undefined;
  private pushed = false;

  constructor(
    instances: number,
    private readonly onReturn: () => void,
  ) {
    this.open = new Set(Array.from({ length: instances }, (_, i) => i));
  }

  /** One (partial) result of instance `index`; `taken` runs when the reader takes it. */
  outputs(index: number, outputs: Instance, taken?: () => void): void {
    this.push({ index, outputs }, taken);
  }

  /** Instance `index` finished: with `error`, an error event ends it. Ends the stream after the last. */
  finish(index: number, error?: ServingError): void {
    if (!this.open.delete(index)) return;
    if (error) this.push({ index, error }, undefined);
    if (this.open.size === 0) this.end();
  }

  /**
   * The request ended before its instances did (deadline, cancellation, stop): before any event
   * the reader's next() rejects with `err`; after, each unfinished instance gets it as an error event.
   */
  abort(err: ServingError): void {
    if (this.ended) return;
    if (!this.pushed) this.failure = err;
    else for (const index of this.open) this.push({ index, error: err }, undefined);
    this.open.clear();
    this.end();
  }

  next(): Promise<IteratorResult<StreamEvent>> {
    if (this.head < this.queue.length) {
      const { event, taken } = this.queue[this.head++]!;
      if (this.head > 64 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      taken?.();
      return Promise.resolve({ done: false, value: event });
    }
    if (this.ended) {
      const failure = this.failure;
      this.failure = undefined;
      return failure ? Promise.reject(failure) : Promise.resolve(DONE);
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** The reader is done (broke out of its loop): queued events are dropped and the request is stopped. */
  return(): Promise<IteratorResult<StreamEvent>> {
    const live = !this.ended;
    this.queue = [];
    this.head = 0;
    this.failure = undefined;
    this.open.clear();
    this.end();
    if (live) this.onReturn();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<StreamEvent> {
    return this;
  }

  private push(event: StreamEvent, taken: (() => void) | undefined): void {
    if (this.ended) return;
    this.pushed = true;
    const waiter = this.waiters.shift();
    if (!waiter) {
      this.queue.push({ event, taken });
      return;
    }
    taken?.();
    waiter.resolve({ done: false, value: event });
  }

  private end(): void {
    this.ended = true;
    for (const waiter of this.waiters.splice(0)) {
      const failure = this.failure;
      this.failure = undefined;
      if (failure) waiter.reject(failure);
      else waiter.resolve(DONE);
    }
  }
}
