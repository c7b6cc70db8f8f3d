/**
 * `actorserve.v1.ActorServe/InferStream`: one request, a stream of replies (actorserve.proto).
 *
 * The request is resolved and decoded like a Predict (the servable, version and method first,
 * then every tensor), then run with `target.inferStream`. Until the first event, a failure is
 * a whole-call error: the call ends with the error's gRPC status and the
 * `actorserve-error-code` trailer (stream-events.ts `startStream`). After it, an instance's
 * error is a reply with `error`, and a failure of the whole stream ends the call with its
 * status. The end of the stream is status OK.
 *
 * Flow: the next event is pulled only once the previous reply was taken by grpc-js (a write
 * that returns false waits for 'drain'), so a client that reads slowly holds the generation
 * back (the engine does not advance a stream stage whose partial results are not read) rather
 * than growing server memory. A client that cancels (or goes away, or passes its deadline)
 * stops the stream: its cancellation aborts the request and the event iterator is returned.
 */
import { Metadata, type ServerWritableStream } from '@grpc/grpc-js';
import type { Cancellation } from '../../engine/cancellation.js';
import { ServingError, toServingError } from '../../engine/errors.js';
import type { Instance } from '../../engine/tensor.js';
import type { MethodTarget, ServingEngine, TargetInferOptions } from '../../facade/engine.js';
import { type RequestParameters, type StreamEvent, closeQuietly, startStream } from '../stream-events.js';
import { decodeInstances, encodeItems } from './codec.js';
import { MalformedMessage } from './malformed.js';
import { ERROR_CODE_TRAILER, type WireInferStreamReply, type WireInferStreamRequest } from './proto.js';
import { wireParameters } from './parameters.js';

export interface InferStreamContext {
  /** Aborted when the client cancels or goes away (or its deadline passes). */
  readonly signal: Cancellation;
  /** Milliseconds left until the call's deadline (undefined: none). */
  readonly callDeadlineMs: number | undefined;
  /** Correlates the access log and the trailer (x-request-id). */
  readonly requestId: string | undefined;
  /** Trailing metadata to send with the final status (the request id). */
  readonly trailer: () => Metadata;
  readonly log: (line: string) => void;
}

type Call = ServerWritableStream<WireInferStreamRequest, WireInferStreamReply>;

/** Serves one InferStream call; resolves when the call has ended (never rejects). */
export async function serveInferStream(engine: ServingEngine, call: Call, ctx: InferStreamContext): Promise<void> {
  const cancellation = ctx.signal;
  let events: AsyncIterator<StreamEvent> | undefined;
  try {
    const prepared = prepare(engine, call.request, ctx);
    const options: TargetInferOptions = { transport: 'grpc', signal: cancellation };
    if (ctx.requestId !== undefined) options.requestId = ctx.requestId;
    if (prepared.deadlineMs !== undefined) options.deadlineMs = prepared.deadlineMs;
    if (prepared.parameters !== undefined) options.parameters = prepared.parameters;
    events = prepared.target.inferStream(prepared.instances, options);
    const { first } = await startStream(events, prepared.instances.length);
    if (first !== undefined && !(await write(call, reply(first), cancellation))) return;
    for (;;) {
      if (cancellation.aborted) return;
      const r = await events.next();
      if (r.done === true) break;
      if (!(await write(call, reply(r.value), cancellation))) return;
    }
    events = undefined;
    if (!cancellation.aborted) call.end(ctx.trailer());
  } catch (err) {
    if (cancellation.aborted) return; // nobody to answer
    const error = toServingError(err);
    if (error.code === 'E_INTERNAL') ctx.log(`gRPC InferStream: internal error: ${(err as Error)?.stack ?? error.message}`);
    const metadata = ctx.trailer();
    metadata.set(ERROR_CODE_TRAILER, error.code);
    // grpc-js ends a server stream with the status of an emitted error
    call.emit('error', { code: error.grpcStatus, details: error.message, metadata });
  } finally {
    if (events !== undefined) await closeQuietly(events);
  }
}

interface Prepared {
  readonly target: MethodTarget;
  readonly instances: Instance[];
  readonly parameters: RequestParameters | undefined;
  readonly deadlineMs: number | undefined;
}

/** The target, decoded instances, parameters and deadline of a request; throws its whole-request error. */
function prepare(engine: ServingEngine, req: WireInferStreamRequest, ctx: InferStreamContext): Prepared {
  const message: unknown = req;
  if (message instanceof MalformedMessage) throw message.error();
  const spec = req.servable_spec;
  const target = engine.lookup(spec?.name ?? '', spec?.method_name ?? '', spec?.version_number ?? 0, {
    transport: 'grpc',
    ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
  });
  try {
    if (!req.instances || req.instances.length === 0) throw new ServingError('E_NO_INSTANCES', 'the request holds no instances');
    const own = req.timeout_ms !== undefined && req.timeout_ms > 0 ? req.timeout_ms : undefined;
    const deadlineMs = own === undefined ? ctx.callDeadlineMs : ctx.callDeadlineMs === undefined ? own : Math.min(own, ctx.callDeadlineMs);
    if (deadlineMs !== undefined && deadlineMs <= 0) throw new ServingError('E_DEADLINE_EXCEEDED', 'the request arrived after its deadline');
    return { target, instances: decodeInstances(req.instances), parameters: wireParameters(req.parameters), deadlineMs };
  } catch (err) {
    engine.countRefused('grpc', toServingError(err).code);
    throw err;
  }
}

function reply(e: StreamEvent): WireInferStreamReply {
  if ('error' in e) return { index: e.index, outputs: {}, error: { code: e.error.code, message: e.error.message } };
  return { index: e.index, outputs: encodeItems(e.outputs) };
}

/**
 * Writes one reply; when grpc-js holds more than its buffer (write returned false), waits for
 * 'drain' before the next event is pulled. False when the call was cancelled meanwhile.
 */
function write(call: Call, message: WireInferStreamReply, cancellation: Cancellation): Promise<boolean> | boolean {
  if (cancellation.aborted) return false;
  if (call.write(message)) return true;
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      cancellation.removeEventListener('abort', done);
      resolve(!cancellation.aborted);
    };
    call.on('drain', done);
    cancellation.addEventListener('abort', done);
  });
}
