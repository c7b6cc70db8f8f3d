/**
 * Request cancellation without EventTarget: the engine needs a flag and an "on abort" hook.
 * An AbortSignal satisfies `CancelSignal`; transports that cancel per call use `Cancellation`,
 * because creating and aborting a real AbortSignal (EventTarget, DOMException) costs several
 * microseconds per request — grpc-js reports every finished call as "cancelled".
 */

/** What inference needs of an AbortSignal. */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A one-shot CancelSignal: `cancel()` sets `aborted` and runs the listeners once, in order. */
export class Cancellation implements CancelSignal {
  aborted = false;
  private listeners: (() => void)[] | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  cancel(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }
}
