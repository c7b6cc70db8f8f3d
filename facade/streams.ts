/**
 * The iterators `inferStream` hands out (facade/engine.ts). A stream is opened on the reader's
 * first `next()`, so that whole-request problems (unknown servable, bad options, overload)
 * reject that call, where a transport can still answer an ordinary error; it is counted once,
 * when it ends. `return()` goes straight to the runtime's stream, even while a `next()` waits
 * (an async generator would queue it behind that call).
 */
import type { ServingError } from '../engine/errors.js';
import type { StreamEvent } from '../engine/inference.js';

const DONE: IteratorResult<StreamEvent> = Object.freeze({ done: true, value: undefined });

/** What a stream reports to the metrics and the access log. */
export interface StreamRecorder {
  /** The request ended: `code` is the first error code (of the request or an instance), undefined when none. */
  ended(code: string | undefined): void;
  /** One outputs event went to the reader. */
  outputs(): void;
}

export class OpenedStream implements AsyncIterableIterator<StreamEvent> {
  private inner: AsyncIterableIterator<StreamEvent> | undefined;
  private closed = false;
  private code: string | undefined;
  private recorder: StreamRecorder | undefined;

  /** `open` makes the runtime's stream and its recorder, or throws (a refusal it has counted itself). */
  constructor(private readonly open: () => { events: AsyncIterableIterator<StreamEvent>; recorder?: StreamRecorder | undefined }) {}

  async next(): Promise<IteratorResult<StreamEvent>> {
    if (this.closed) return DONE;
    if (!this.inner) {
      try {
        const opened = this.open();
        this.inner = opened.events;
        this.recorder = opened.recorder;
      } catch (err) {
        this.closed = true;
        throw err;
      }
    }
    let result: IteratorResult<StreamEvent>;
    try {
      result = await this.inner.next();
    } catch (err) {
      this.code ??= (err as ServingError).code ?? 'E_INTERNAL';
      this.close();
      throw err;
    }
    if (result.done) this.close();
    else if ('error' in result.value) this.code ??= result.value.error.code;
    else this.recorder?.outputs();
    return result;
  }

  /** The reader is done early: the runtime stops the stream's work; counted as cancelled. */
  async return(): Promise<IteratorResult<StreamEvent>> {
    if (!this.closed) {
      this.closed = true;
      if (this.inner) {
        this.code ??= 'E_CANCELLED';
        await this.inner.return?.();
        this.recorder?.ended(this.code);
      }
    }
    return DONE;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<StreamEvent> {
    return this;
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.recorder?.ended(this.code);
  }
}
