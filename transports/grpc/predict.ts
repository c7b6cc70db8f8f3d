/**
 * One predict request, independent of the RPC that carried it: servable spec and wire
 * instances in, outcome out, and the two reply encodings (MindSpore's PredictReply and our
 * PredictStreamReply).
 *
 * Order of checks, as in MindSpore Serving: the servable, version and method first, then the
 * wire form of every tensor. A malformed tensor fails the whole request (one error), as the
 * reference does; problems the engine finds per instance (missing or extra inputs, dtypes or
 * sizes the model does not take, a stage that throws) fail that instance only.
 */
import type { CancelSignal } from '../../engine/cancellation.js';
import { ServingError, toServingError } from '../../engine/errors.js';
import { type SequenceRequest, sequenceFromText } from '../../engine/sequence.js';
import type { Instance } from '../../engine/tensor.js';
import type { InstanceOutcome, MethodTarget, ServingEngine, TargetInferOptions } from '../../facade/engine.js';
import { decodeInstances, encodeItems, msErrorCode } from './codec.js';
import type { WireErrorMsg, WireInstance, WirePredictReply, WireSequence, WireServableSpec, WireStreamReply } from './proto.js';

export type PredictOutcome =
  | { readonly ok: true; readonly outcomes: readonly InstanceOutcome[] }
  | { readonly ok: false; readonly error: ServingError };

export interface PredictContext {
  /** Milliseconds left for the request (from the client's deadline); absent = the servable's default. */
  readonly deadlineMs?: number | undefined;
  /** Aborted when the client cancels; the engine then drops the request's work. */
  readonly signal?: CancelSignal;
  readonly log?: (line: string) => void;
  /** Correlates the access log and the reply (x-request-id). */
  readonly requestId?: string;
  /** The call's `sequence-id`, `sequence-start` and `sequence-end` metadata values (stateful models). */
  readonly sequenceMetadata?: (name: 'id' | 'start' | 'end') => string | undefined;
  /** PredictStreamRequest.sequence (stateful models). */
  readonly sequence?: WireSequence | null;
}

const GRPC = { transport: 'grpc' } as const;

/**
 * A PredictStreamRequest's `sequence` message as a request's sequence option; undefined when it
 * names none (no id, 0 or ""). The id itself is checked where the sequence is admitted.
 */
export function sequenceFromMessage(m: WireSequence): SequenceRequest | undefined {
  const id = m.id === 'number_id' ? m.number_id : m.id === 'string_id' ? m.string_id : undefined;
  const start = m.start ?? false;
  const end = m.end ?? false;
  if (id === undefined || id === 0 || id === '') {
    if (start || end) throw new ServingError('E_INVALID_ARGUMENT', 'PredictStreamRequest.sequence: start and end need an id (number_id or string_id)');
    return undefined;
  }
  return { id, start, end };
}

export async function runPredict(
  engine: ServingEngine,
  spec: WireServableSpec | null | undefined,
  instances: readonly WireInstance[] | undefined,
  ctx: PredictContext = {},
): Promise<PredictOutcome> {
  const servable = spec?.name ?? '';
  const method = spec?.method_name ?? '';
  const version = spec?.version_number ?? 0;
  // A failed lookup is counted by the facade; a request refused between the lookup and the
  // run (no instances, past its deadline, a malformed tensor) is counted here; the target
  // counts what it runs.
  let target: MethodTarget;
  let decoded: Instance[];
  let sequence: SequenceRequest | undefined;
  try {
    target = engine.lookup(servable, method, version, ctx.requestId !== undefined ? { transport: 'grpc', requestId: ctx.requestId } : GRPC);
  } catch (err) {
    return failed(err, servable, method, ctx);
  }
  try {
    if (!instances || instances.length === 0) {
      throw new ServingError('E_NO_INSTANCES', 'the request holds no instances');
    }
    if (ctx.deadlineMs !== undefined && ctx.deadlineMs <= 0) {
      throw new ServingError('E_DEADLINE_EXCEEDED', 'the request arrived after its deadline');
    }
    decoded = decodeInstances(instances);
    if (ctx.sequenceMetadata) sequence = sequenceFromText(ctx.sequenceMetadata);
    else if (ctx.sequence) sequence = sequenceFromMessage(ctx.sequence);
  } catch (err) {
    const outcome = failed(err, servable, method, ctx);
    engine.countRefused('grpc', outcome.error.code);
    return outcome;
  }
  try {
    const options: TargetInferOptions = { transport: 'grpc' };
    if (ctx.requestId !== undefined) options.requestId = ctx.requestId;
    if (ctx.deadlineMs !== undefined) options.deadlineMs = ctx.deadlineMs;
    if (ctx.signal) options.signal = ctx.signal;
    if (sequence) options.sequence = sequence;
    const outcomes = await target.inferEach(decoded, options);
    return { ok: true, outcomes };
  } catch (err) {
    return failed(err, servable, method, ctx);
  }
}

function failed(err: unknown, servable: string, method: string, ctx: PredictContext): { readonly ok: false; readonly error: ServingError } {
  const error = toServingError(err);
  if (error.code === 'E_INTERNAL') ctx.log?.(`gRPC predict ${servable}:${method}: internal error: ${(err as Error)?.stack ?? error.message}`);
  return { ok: false, error };
}

/** MindSpore substitutes this text for a failure without one. */
const NO_TEXT = 'Predict failed';

function errorMsg(e: ServingError): WireErrorMsg {
  return { error_code: msErrorCode(e.code), error_msg: Buffer.from(e.message || NO_TEXT, 'utf8') };
}

/**
 * MindSpore's reply rules (§1.6): all succeeded → N instances, no errors; the request failed,
 * or every instance failed with the same code and text → no instances, one error; otherwise →
 * N instances (failed ones empty) and N errors, code 0 for the successes. `codes` lists the
 * actorserve code of each error entry, for the `actorserve-error-codes` trailer.
 */
export function encodeMsReply(spec: WireServableSpec | null | undefined, outcome: PredictOutcome): { reply: WirePredictReply; codes: string[] } {
  const servable_spec = spec ?? {};
  if (!outcome.ok) return { reply: { servable_spec, instances: [], error_msg: [errorMsg(outcome.error)] }, codes: [outcome.error.code] };
  const outs = outcome.outcomes;
  const failed = outs.filter((o): o is ServingError => o instanceof ServingError);
  if (failed.length === 0) {
    return { reply: { servable_spec, instances: outs.map((o) => ({ items: encodeItems(o as Exclude<InstanceOutcome, ServingError>) })), error_msg: [] }, codes: [] };
  }
  const first = failed[0]!;
  if (failed.length === outs.length && failed.every((e) => e.code === first.code && e.message === first.message)) {
    return { reply: { servable_spec, instances: [], error_msg: [errorMsg(first)] }, codes: [first.code] };
  }
  const instances: WireInstance[] = [];
  const error_msg: WireErrorMsg[] = [];
  const codes: string[] = [];
  for (const o of outs) {
    if (o instanceof ServingError) {
      instances.push({ items: {} });
      error_msg.push(errorMsg(o));
      codes.push(o.code);
    } else {
      instances.push({ items: encodeItems(o) });
      error_msg.push({ error_code: 0, error_msg: Buffer.alloc(0) });
      codes.push('');
    }
  }
  return { reply: { servable_spec, instances, error_msg }, codes };
}

/** Our stream reply: a whole-request error, or one result per instance (outputs or error). */
export function encodeStreamReply(id: number, outcome: PredictOutcome): WireStreamReply {
  if (!outcome.ok) return { id, error: { code: outcome.error.code, message: outcome.error.message }, results: [] };
  return {
    id,
    results: outcome.outcomes.map((o) =>
      o instanceof ServingError ? { outputs: {}, error: { code: o.code, message: o.message } } : { outputs: encodeItems(o) },
    ),
  };
}
