/**
 * Reads a request body from uWS `onData` chunks into one buffer, never holding more than the
 * limit: a declared Content-Length over the limit is refused before any byte is read, and a
 * chunked body is refused as soon as it passes the limit. The buffer grows with what actually
 * arrives (a client announcing 100 MiB and sending nothing costs little).
 */
import type { Exchange } from './exchange.js';

const INITIAL_CAPACITY = 64 * 1024;

export interface BodyLimits {
  /** Largest accepted body, in bytes. */
  readonly limit: number;
  /** The Content-Length header's value, when the request has one. */
  readonly declaredLength: number | undefined;
  /** The whole body must arrive within this many ms (uWS's own idle timeout only catches stalls). */
  readonly timeoutMs: number;
}

export interface BodyCallbacks {
  readonly onBody: (body: Uint8Array) => void;
  /** The body is known to exceed the limit: reply and close the connection. */
  readonly onTooLarge: (bytes: number) => void;
  /** The body did not arrive in time: reply and close the connection. */
  readonly onTimeout: (received: number) => void;
}

/** Calls exactly one of the callbacks, unless the exchange closes first (then none). */
export function readBody(ex: Exchange, { limit, declaredLength, timeoutMs }: BodyLimits, cb: BodyCallbacks): void {
  if (declaredLength !== undefined && declaredLength > limit) {
    cb.onTooLarge(declaredLength);
    return;
  }
  let buf = new Uint8Array(Math.min(declaredLength ?? INITIAL_CAPACITY, INITIAL_CAPACITY));
  let size = 0;
  let done = false;
  // The body timer starts with the first chunk that is not the last: a body in one chunk (most
  // requests) needs none, and a body that never starts is cut off by uWS's idle timer (~10 s).
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const startTimer = (): void => {
    timer = setTimeout(
      () => {
        if (done || !ex.open) return;
        done = true;
        cb.onTimeout(size);
      },
      Math.max(0, timeoutMs - (performance.now() - started)),
    );
    ex.onFinished(() => clearTimeout(timer));
  };
  ex.res.onData((chunk: ArrayBuffer, isLast: boolean) => {
    if (done || !ex.open) return;
    const n = chunk.byteLength;
    if (size + n > limit) {
      done = true;
      clearTimeout(timer);
      cb.onTooLarge(size + n);
      return;
    }
    if (size + n > buf.length) {
      const want = Math.max(size + n, Math.min(buf.length * 2, declaredLength ?? limit));
      const grown = new Uint8Array(want);
      grown.set(buf.subarray(0, size));
      buf = grown;
    }
    // uWS neuters the chunk when this callback returns: copy it now
    buf.set(new Uint8Array(chunk), size);
    size += n;
    if (isLast) {
      done = true;
      clearTimeout(timer);
      cb.onBody(buf.subarray(0, size));
    } else if (timer === undefined) {
      startTimer();
    }
  });
}
