/**
 * Server-Sent Events (text/event-stream) replies: an engine event stream (stream-events.ts)
 * becomes a StreamedReply (exchange.ts) in one of two formats.
 *
 * MindSpore-style URLs (`POST /model/<servable>[/version/<n>]:<method>` with
 * `Accept: text/event-stream`), one SSE event per engine event:
 *
 *   data: {"index":0,"outputs":{"text_output":"Hel"}}                       a (partial) result
 *   event: error
 *   data: {"index":0,"error_code":"E_STAGE_FAILED","error_msg":"..."}       an instance failed
 *   event: error
 *   data: {"error_code":"E_DEADLINE_EXCEEDED","error_msg":"..."}            the stream failed
 *   event: end
 *   data: {}                                                                 always last
 *
 * The Open Inference Protocol's `generate_stream` (generate-routes.ts) has data-only events, as
 * Triton sends them: `{"model_name", "model_version", "text_output", ..., "done": false}` per
 * result, `{"error": "..."}` for a failure, and a last `{..., "done": true}`.
 *
 * Either way the end is explicit: a stream that closes without its end event was cut off.
 */
import { type ServingError, toServingError } from '../../engine/errors.js';
import { type StartedStream, type StreamEvent, closeQuietly } from '../stream-events.js';
import type { Instance } from '../../engine/tensor.js';
import type { StreamedReply } from './exchange.js';

export const SSE_TYPE = 'text/event-stream';

/** Asks for SSE: `text/event-stream` among the Accept header's media ranges. */
export function wantsEventStream(accept: string): boolean {
  return ACCEPT_SSE.test(accept);
}

const ACCEPT_SSE = /(?:^|[,\s])text\/event-stream\s*(?:[;,]|$)/i;

/** Caches and proxies must pass events on as they come (nginx buffers unless told). */
const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });

/** One SSE event; `data` is one line of JSON (JSON.stringify writes no raw newline). */
export function sseEvent(data: string, event?: string): string {
  return event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`;
}

/** How one format writes events. */
export interface SseFormat {
  /** A result or an instance's error. */
  event(e: StreamEvent): string;
  /** The stream failed as a whole after its first event. */
  failure(error: ServingError): string;
  /** The last event. */
  end(): string;
}

/** A 200 text/event-stream reply of a started stream. */
export function sseReply(stream: StartedStream, format: SseFormat): StreamedReply {
  return { status: 200, contentType: SSE_TYPE, headers: SSE_HEADERS, chunks: sseChunks(stream, format) };
}

async function* sseChunks({ first, rest }: StartedStream, format: SseFormat): AsyncGenerator<string, void, undefined> {
  let finished = false;
  try {
    if (first !== undefined) yield format.event(first);
    for (;;) {
      const r = await rest.next();
      if (r.done === true) break;
      yield format.event(r.value);
    }
    finished = true;
  } catch (err) {
    finished = true;
    yield format.failure(toServingError(err));
  } finally {
    // returned early (the client went away): stop the stream
    if (!finished) await closeQuietly(rest);
  }
  yield format.end();
}

/** The MindSpore-style format (see the header); `outputsJson` writes one instance's outputs as a JSON object. */
export function mindsporeSseFormat(outputsJson: (outputs: Instance) => string): SseFormat {
  const errorData = (error: ServingError, index?: number): string =>
    `{${index === undefined ? '' : `"index":${index},`}"error_code":${JSON.stringify(error.code)},"error_msg":${JSON.stringify(error.message)}}`;
  return {
    event(e) {
      if ('error' in e) return sseEvent(errorData(e.error, e.index), 'error');
      let outputs: string;
      try {
        outputs = outputsJson(e.outputs);
      } catch (err) {
        return sseEvent(errorData(toServingError(err), e.index), 'error');
      }
      return sseEvent(`{"index":${e.index},"outputs":${outputs}}`);
    },
    failure: (error) => sseEvent(errorData(error), 'error'),
    end: () => sseEvent('{}', 'end'),
  };
}
