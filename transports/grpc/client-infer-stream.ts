/**
 * The client side of `actorserve.v1.ActorServe/InferStream` (`Client.inferStream`,
 * `Client.generate`): one request, its events as an async iterator.
 *
 * Flow: grpc-js reads the next message off HTTP/2 only when the iterator is pulled (the call's
 * readable side buffers a few), so a consumer that stops pulling stops the server's writes and
 * with them the generation. Breaking out of a `for await` (or `return()`), or aborting
 * `options.signal`, cancels the call; the server then stops the generation at its next step.
 * A call that fails as a whole (before or after its first event) throws its ServingError
 * from the iterator; an instance that fails after the stream began is an event with `error`.
 */
import { type Client as GrpcClient, Metadata, type ServiceError } from '@grpc/grpc-js';
import { ServingError, isErrorCode } from '../../engine/errors.js';
import type { Instance } from '../../engine/tensor.js';
import { tensorStrings } from '../../engine/tensor.js';
import { deadlineOf, serviceError } from './channel.js';
import { decodeTensor } from './codec.js';
import { toWireParameter } from './parameters.js';
import { INFER_STREAM_PATH, type WireInferStreamReply, type WireInferStreamRequest, type WireInstance, type WireParameter, type WireServableSpec, protos } from './proto.js';

/** One event of a client stream: a (partial) result of instance `index`, or its error. */
export type ClientStreamEvent = { readonly index: number; readonly outputs: Instance } | { readonly index: number; readonly error: ServingError };

/** Request parameters (generation settings); a list of strings (`stop`) is sent as its JSON text. */
export type StreamParameters = Readonly<Record<string, string | number | boolean | readonly string[]>>;

export interface InferStreamOptions {
  /** Parameters handed to the method's stream stage (`ctx.parameters`): max_tokens, temperature, top_p, top_k, seed, stop... */
  readonly parameters?: StreamParameters;
  /** Aborting it cancels the call (the server stops the generation). */
  readonly signal?: AbortSignal;
  /** Deadline of the whole stream in milliseconds (default: the client's timeoutMs). */
  readonly timeoutMs?: number;
}

/** The request as sent: the servable, instances, parameters and the stream's timeout. */
export function inferStreamRequest(spec: WireServableSpec, instances: WireInstance[], parameters: StreamParameters | undefined, timeoutMs: number | undefined): WireInferStreamRequest {
  const wire: Record<string, WireParameter> = {};
  for (const [name, value] of Object.entries(parameters ?? {})) {
    if (Array.isArray(value)) wire[name] = { string_param: JSON.stringify(value) };
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') wire[name] = toWireParameter(value);
    else throw new ServingError('E_INVALID_ARGUMENT', `Client: parameter ${JSON.stringify(name)} must be a string, number, boolean or list of strings`);
  }
  return { servable_spec: spec, instances, parameters: wire, timeout_ms: timeoutMs === undefined ? 0 : Math.ceil(timeoutMs) };
}

/** Opens the call and yields its events (see the header). */
export async function* inferStreamCall(grpc: GrpcClient, request: WireInferStreamRequest, timeoutMs: number | undefined, signal: AbortSignal | undefined): AsyncGenerator<ClientStreamEvent, void, undefined> {
  const cancelled = (cause?: unknown): ServingError => new ServingError('E_CANCELLED', 'the stream was cancelled (its signal was aborted)', { cause });
  if (signal?.aborted) throw cancelled(signal.reason);
  const { inferStream } = protos();
  const call = grpc.makeServerStreamRequest(INFER_STREAM_PATH, inferStream.requestSerialize, inferStream.responseDeserialize, request, new Metadata(), {
    deadline: deadlineOf(timeoutMs),
  });
  const cancel = (): void => call.cancel();
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    for await (const reply of call as AsyncIterable<WireInferStreamReply>) yield decodeEvent(reply);
  } catch (err) {
    if (signal?.aborted) throw cancelled(err);
    throw isServiceError(err) ? serviceError(err) : err;
  } finally {
    signal?.removeEventListener('abort', cancel);
    call.on('error', () => undefined); // the status of a call cancelled below has no reader left
    call.cancel(); // nothing left to cancel when the stream ended
  }
}

/** The text of each event of a generation: its `text_output` joined; an instance error is thrown. */
export async function* textOf(events: AsyncIterable<ClientStreamEvent>, output: string): AsyncGenerator<string, void, undefined> {
  for await (const e of events) {
    if ('error' in e) throw e.error;
    const t = e.outputs[output];
    if (t === undefined) throw new ServingError('E_INTERNAL', `the method's results have no output '${output}' (outputs: ${Object.keys(e.outputs).join(', ')})`);
    yield tensorStrings(t).join('');
  }
}

function isServiceError(err: unknown): err is ServiceError {
  return typeof err === 'object' && err !== null && typeof (err as ServiceError).code === 'number' && 'details' in err;
}

function decodeEvent(reply: WireInferStreamReply): ClientStreamEvent {
  const index = reply.index ?? 0;
  if (reply.error) {
    return { index, error: new ServingError(isErrorCode(reply.error.code) ? reply.error.code : 'E_INTERNAL', reply.error.message || 'inference failed') };
  }
  const outputs: Instance = {};
  try {
    for (const [name, t] of Object.entries(reply.outputs ?? {})) outputs[name] = decodeTensor(t, `event of instance ${index}, output '${name}'`);
  } catch (err) {
    throw new ServingError('E_INTERNAL', `the server sent a malformed tensor: ${(err as Error).message}`);
  }
  return { index, outputs };
}
