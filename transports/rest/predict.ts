/**
 * MindSpore's predict handler, independent of HTTP framing: the body read and the codecs
 * chosen (route-table.ts `BodyRequest`), a status and an encoded body out.
 *
 * Status rules: 200 when at least one instance succeeded (failed ones carry
 * `{"error_msg": ...}` in their place). When the whole request fails — bad URL or body, unknown
 * servable/method/version, overload, deadline — or every instance failed, the status is the
 * error's (ERROR_CODES: 400/404/503/504/500) and the body `{"error_msg": ...}`; when every
 * instance failed with different messages, the body keeps the per-instance list.
 */
import { ServingError, toServingError } from '../../engine/errors.js';
import { type SequenceRequest, sequenceFromParameters } from '../../engine/sequence.js';
import type { Instance } from '../../engine/tensor.js';
import type { InstanceOutcome, MethodTarget, ServingEngine } from '../../facade/engine.js';
import { type ReplyEncoder, errorReply } from './codec.js';
import type { Reply } from './exchange.js';
import type { BodyRequest } from './route-table.js';

/** What a predict URL names. */
export interface PredictTarget {
  readonly servable: string;
  /** 0 = newest loaded. */
  readonly version: number;
  readonly method: string;
}

export async function predict(engine: ServingEngine, request: BodyRequest<PredictTarget>): Promise<Reply> {
  const { params, requestId, encoder } = request;
  // A failed lookup is counted by the facade, a body that does not decode here, and what runs
  // by the target.
  let target: MethodTarget;
  let instances: Instance[];
  let sequence: SequenceRequest | undefined;
  try {
    target = engine.lookup(params.servable, params.method, params.version, { transport: 'rest', requestId });
  } catch (err) {
    return failed(engine, err, params, encoder);
  }
  try {
    instances = request.decoder.decode(request.body, target.info.inputs);
    // Only a stateful method's body is read for "parameters" (a second parse, kept off the others' path).
    if (target.info.sequence) sequence = sequenceFromParameters(request.decoder.parameters?.(request.body));
  } catch (err) {
    engine.countRefused('rest', toServingError(err).code);
    return failed(engine, err, params, encoder);
  }
  try {
    const outcomes = await target.inferEach(instances, {
      transport: 'rest',
      requestId,
      ...(request.deadlineMs !== undefined ? { deadlineMs: request.deadlineMs } : {}),
      signal: request.signal,
      ...(sequence ? { sequence } : {}),
    });
    return outcomeReply(outcomes, encoder);
  } catch (err) {
    return failed(engine, err, params, encoder);
  }
}

function failed(engine: ServingEngine, err: unknown, params: PredictTarget, encoder: ReplyEncoder): Reply {
  const e = toServingError(err);
  if (e.code === 'E_INTERNAL') engine.log(`REST predict ${params.servable}:${params.method}: internal error: ${(err as Error)?.stack ?? e.message}`);
  return errorReply(e.httpStatus, e.message, encoder);
}

/** MindSpore's collapse rule: see the header. */
export function outcomeReply(outcomes: readonly InstanceOutcome[], encoder: ReplyEncoder): Reply {
  const failed = outcomes.filter((o): o is ServingError => o instanceof ServingError);
  if (failed.length === outcomes.length && failed.length > 0) {
    const first = failed[0]!;
    if (failed.every((e) => e.message === first.message)) return errorReply(first.httpStatus, first.message, encoder);
    return { status: first.httpStatus, contentType: encoder.contentType, body: encoder.encodeOutcomes(outcomes) };
  }
  return { status: 200, contentType: encoder.contentType, body: encoder.encodeOutcomes(outcomes) };
}
