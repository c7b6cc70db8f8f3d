/**
 * MindSpore's predict handler, independent of HTTP framing: the body read and the codecs
 * chosen (route-table.ts `BodyRequest`), a status and an encoded body out.
 *
 * Status rules: 200 when at least one instance succeeded (failed ones carry
 * `{"error_msg": ...}` in their place). When the whole request fails — bad URL or body, unknown
 * servable/method/version, overload, deadline — or every instance failed, the status is the
 * error's (ERROR_CODES: 400/404/503/504/500) and the body `{"error_msg": ...}`; when every
 * instance failed with different messages, the body keeps the per-instance list.
 *
 * With `Accept: text/event-stream` the reply is Server-Sent Events (sse.ts): one event per
 * result as the method makes it (per partial result of a streaming method, per instance of any
 * other), error events, and an explicit end event. Failures before the first event are the
 * ordinary replies above. The body's top-level "parameters" reach a streaming method's stream
 * stage (`ctx.parameters`), with or without SSE.
 */
import { ServingError, toServingError } from '../../engine/errors.js';
import { type SequenceRequest, sequenceFromParameters } from '../../engine/sequence.js';
import type { Instance } from '../../engine/tensor.js';
import type { InstanceOutcome, MethodTarget, ServingEngine } from '../../facade/engine.js';
import { type ReplyEncoder, errorReply } from './codec.js';
import type { Reply, StreamedReply } from './exchange.js';
import { instanceJson } from './json-codec.js';
import type { BodyRequest } from './route-table.js';
import { mindsporeSseFormat, sseReply, wantsEventStream } from './sse.js';
import { type RequestParameters, requestParameters, startStream } from '../stream-events.js';

/** What a predict URL names. */
export interface PredictTarget {
  readonly servable: string;
  /** 0 = newest loaded. */
  readonly version: number;
  readonly method: string;
}

/** Triton's sequence parameters: read as the request's sequence, not handed to stages. */
const SEQUENCE_PARAMETERS: ReadonlySet<string> = new Set(['sequence_id', 'sequence_start', 'sequence_end']);

const SSE_FORMAT = mindsporeSseFormat(instanceJson);

export async function predict(engine: ServingEngine, request: BodyRequest<PredictTarget>): Promise<Reply | StreamedReply> {
  const { params, requestId, encoder } = request;
  const sse = wantsEventStream(request.headers['accept'] ?? '');
  // A failed lookup is counted by the facade, a body that does not decode here, and what runs
  // by the target.
  let target: MethodTarget;
  let instances: Instance[];
  let sequence: SequenceRequest | undefined;
  let parameters: RequestParameters | undefined;
  try {
    target = engine.lookup(params.servable, params.method, params.version, { transport: 'rest', requestId });
  } catch (err) {
    return failed(engine, err, params, encoder);
  }
  try {
    instances = request.decoder.decode(request.body, target.info.inputs);
    // Only a stateful or streaming method's body is read for "parameters" (a second parse, kept off the others' path).
    if (target.info.sequence || target.info.stream) {
      const raw = request.decoder.parameters?.(request.body);
      if (target.info.sequence) sequence = sequenceFromParameters(raw);
      if (target.info.stream) parameters = requestParameters(raw, SEQUENCE_PARAMETERS);
    }
  } catch (err) {
    engine.countRefused('rest', toServingError(err).code);
    return failed(engine, err, params, encoder);
  }
  const options = {
    transport: 'rest' as const,
    requestId,
    ...(request.deadlineMs !== undefined ? { deadlineMs: request.deadlineMs } : {}),
    signal: request.signal,
    ...(sequence ? { sequence } : {}),
    ...(parameters ? { parameters } : {}),
  };
  try {
    if (sse) return sseReply(await startStream(target.inferStream(instances, options), instances.length), SSE_FORMAT);
    return outcomeReply(await target.inferEach(instances, options), encoder);
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
