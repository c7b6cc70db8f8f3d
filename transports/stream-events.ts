/**
 * What every streaming transport (gRPC InferStream, REST Server-Sent Events, the generate
 * endpoints) does the same way with the engine's event stream (`MethodTarget.inferStream`):
 *
 * - `startStream`: pulls the first event before anything is sent, so a request that fails as a
 *   whole is still answered with an ordinary HTTP or gRPC error. A request of one instance
 *   whose first event is an error counts as failed as a whole too (a generation refused for a
 *   bad parameter is a 400, not a 200 with an error event).
 * - `requestParameters`: request-level parameters (generation settings) from JSON, checked:
 *   strings, finite numbers and booleans pass; a list of strings (OIP's `stop`) reaches the
 *   stage as its JSON text; anything else is refused.
 */
import { ServingError } from '../engine/errors.js';
import { isParameterValue } from '../engine/inference.js';
import type { RequestParameters, StreamEvent } from '../facade/engine.js';

export type { RequestParameters, StreamEvent };

/** A stream that has produced its first event (or ended without one). */
export interface StartedStream {
  /** The first event; undefined when the stream ended at once. */
  readonly first: StreamEvent | undefined;
  /** The rest of the stream (the same iterator). */
  readonly rest: AsyncIterator<StreamEvent>;
}

/**
 * Pulls the first event of `events`. Rejects with the request's error when the stream fails
 * before its first event, or when a one-instance request's first event is an error (the
 * iterator is closed then).
 */
export async function startStream(events: AsyncIterator<StreamEvent>, instances: number): Promise<StartedStream> {
  const r = await events.next();
  if (r.done === true) return { first: undefined, rest: events };
  const first = r.value;
  if (instances === 1 && 'error' in first) {
    await closeQuietly(events);
    throw first.error;
  }
  return { first, rest: events };
}

/** Stops a stream the reader gives up on (`return()`), ignoring what that throws. */
export async function closeQuietly(events: AsyncIterator<StreamEvent>): Promise<void> {
  try {
    await events.return?.();
  } catch {
    // the stream failed while it was being stopped: nobody reads it any more
  }
}

/**
 * Checks request parameters given as JSON (a REST body's `parameters`, OIP's generate
 * `parameters`). Undefined or null → undefined. `skip` names parameters read elsewhere
 * (Triton's sequence_id, sequence_start, sequence_end).
 */
export function requestParameters(value: unknown, skip: ReadonlySet<string> = NO_NAMES): RequestParameters | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ServingError('E_INVALID_ARGUMENT', `"parameters" must be a JSON object of named values, got ${Array.isArray(value) ? 'a list' : typeof value}`);
  }
  const out: Record<string, string | number | boolean> = {};
  let any = false;
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (skip.has(name)) continue;
    out[name] = parameterValue(name, v);
    any = true;
  }
  return any ? out : undefined;
}

const NO_NAMES: ReadonlySet<string> = new Set();

function parameterValue(name: string, v: unknown): string | number | boolean {
  if (isParameterValue(v)) return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return JSON.stringify(v);
  throw new ServingError(
    'E_INVALID_ARGUMENT',
    `parameter ${JSON.stringify(name)} must be a string, a finite number, a boolean or a list of strings, got ${v === null ? 'null' : Array.isArray(v) ? 'a list of non-strings' : typeof v}`,
  );
}
