/**
 * A predict call, independent of HTTP framing: decoded body in, status and encoded body out.
 *
 * Status rules: 200 when at least one instance succeeded (failed ones carry
 * `{"error_msg": ...}` in their place). When the whole request fails — bad URL or body, unknown
 * servable/method/version, overload, deadline — or every instance failed, the status is the
 * error's (ERROR_CODES: 400/404/503/504/500) and the body `{"error_msg": ...}`; when every
 * instance failed with different messages, the body keeps the per-instance list.
 */
import type { CancelSignal } from '../../engine/cancellation.js';
import { ServingError, toServingError } from '../../engine/errors.js';
import type { InstanceOutcome, ServingEngine } from '../../facade/engine.js';
import type { Instance } from '../../engine/tensor.js';
import { type Body, JSON_TYPE, MSGPACK_TYPE } from './exchange.js';
import { type InstancesParser, decodeJsonRequest, encodeJsonError, writeJsonReply } from './json-codec.js';
import { decodeMsgpackRequest, encodeMsgpackError, encodeMsgpackReply } from './msgpack-codec.js';
import { ReplyWriter } from './reply-writer.js';

export interface PredictCall {
  readonly servable: string;
  /** 0 = newest loaded. */
  readonly version: number;
  readonly method: string;
  readonly body: Uint8Array;
  /** The body is msgpack (else JSON). */
  readonly msgpackBody: boolean;
  /** Reply in msgpack (else JSON). */
  readonly msgpackReply: boolean;
  readonly deadlineMs?: number;
  /** Correlates the access log and the reply (X-Request-Id). */
  readonly requestId?: string;
  /** Aborted when the client goes away: the engine answers E_CANCELLED and drops queued work. */
  readonly signal?: CancelSignal;
}

export interface Reply {
  readonly status: number;
  readonly contentType: string;
  /** JSON replies are written when sent, into this thread's ReplyWriter. */
  readonly body: Body;
}

/** Every JSON reply of this thread is written here, one at a time, as it is sent. */
const replyWriter = new ReplyWriter();

const REST = { transport: 'rest' } as const;

export interface PredictOptions {
  /** Step 1 of JSON decoding (default: native/index.ts `parseInstances`). */
  readonly parseInstances?: InstancesParser;
  /** Receives internal errors (status 500 from a bug), for the server log. */
  readonly log?: (line: string) => void;
}

export async function predict(engine: ServingEngine, call: PredictCall, options: PredictOptions = {}): Promise<Reply> {
  try {
    const context = call.requestId !== undefined ? { transport: 'rest', requestId: call.requestId } as const : REST;
    const target = engine.lookup(call.servable, call.method, call.version, context);
    const inputs = target.info.inputs;
    const instances: Instance[] = call.msgpackBody
      ? decodeMsgpackRequest(call.body, inputs)
      : decodeJsonRequest(call.body, inputs, options.parseInstances);
    const outcomes = await target.inferEach(instances, {
      transport: 'rest',
      ...(call.requestId !== undefined ? { requestId: call.requestId } : {}),
      ...(call.deadlineMs !== undefined ? { deadlineMs: call.deadlineMs } : {}),
      ...(call.signal !== undefined ? { signal: call.signal } : {}),
    });
    return outcomeReply(outcomes, call.msgpackReply);
  } catch (err) {
    const e = toServingError(err);
    if (e.code === 'E_INTERNAL') options.log?.(`REST predict ${call.servable}:${call.method}: internal error: ${(err as Error)?.stack ?? e.message}`);
    return errorReply(e.httpStatus, e.message, call.msgpackReply);
  }
}

export function outcomeReply(outcomes: readonly InstanceOutcome[], msgpack: boolean): Reply {
  const failed = outcomes.filter((o): o is ServingError => o instanceof ServingError);
  if (failed.length === outcomes.length && failed.length > 0) {
    const first = failed[0]!;
    if (failed.every((e) => e.message === first.message)) return errorReply(first.httpStatus, first.message, msgpack);
    return encoded(first.httpStatus, outcomes, msgpack);
  }
  return encoded(200, outcomes, msgpack);
}

function encoded(status: number, outcomes: readonly InstanceOutcome[], msgpack: boolean): Reply {
  return msgpack
    ? { status, contentType: MSGPACK_TYPE, body: encodeMsgpackReply(outcomes) }
    : { status, contentType: JSON_TYPE, body: { encode: () => writeJsonReply(outcomes, replyWriter) } };
}

export function errorReply(status: number, message: string, msgpack: boolean): Reply {
  return msgpack
    ? { status, contentType: MSGPACK_TYPE, body: encodeMsgpackError(message) }
    : { status, contentType: JSON_TYPE, body: encodeJsonError(message) };
}
