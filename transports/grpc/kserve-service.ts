/**
 * `inference.GRPCInferenceService` (the Open Inference Protocol over gRPC) on the v2 core
 * (transports/kserve/): what each RPC means, as functions of the engine and the decoded
 * message; server.ts registers them beside MindSpore's service on the same server.
 *
 * - ServerLive / ServerReady / ModelReady / ServerMetadata / ModelMetadata: the core's answers;
 *   an unknown model or version is NOT_FOUND, a malformed version INVALID_ARGUMENT.
 * - ModelInfer: typed `contents` or `raw_input_contents` in (kserve-codec.ts), `inferV2`, the
 *   outputs always in `raw_output_contents` (as Triton answers). Errors are the gRPC status of
 *   the ServingError's code, with the code in the `actorserve-error-code` trailer.
 * - ModelStreamInfer: the same per request on a pipelined stream (stream-session.ts); a
 *   request that fails is answered with `error_message` and an `infer_response` carrying its
 *   `id` (and the stable code as the response parameter `actorserve-error-code`); the stream
 *   stays open.
 */
import type { CancelSignal } from '../../engine/cancellation.js';
import { ServingError, toServingError } from '../../engine/errors.js';
import type { ServingEngine } from '../../facade/engine.js';
import { type V2InferContext, type V2InferResponse, inferV2 } from '../kserve/infer.js';
import { SEQUENCE_EXTENSIONS, v2ModelMetadata, v2ModelReady, v2ServerMetadata, v2ServerReady } from '../kserve/models.js';
import { tensorToRaw } from '../kserve/raw.js';
import { STREAM_ERROR_CODE_PARAMETER, decodeParameters, decodeV2Tensors, encodeParameters } from './kserve-codec.js';
import type {
  KServeMessages,
  WireModelInferRequest,
  WireModelInferResponse,
  WireModelStreamInferResponse,
} from './proto.js';
import type { PipelinedRpc } from './stream-session.js';

/** Extensions of the protocol this gRPC service implements (server metadata). */
const GRPC_EXTENSIONS: readonly string[] = [...SEQUENCE_EXTENSIONS];

/** What one call brings besides its message. */
export interface KServeCallContext {
  /** Milliseconds left (from the client's deadline); absent = the servable's default. */
  readonly deadlineMs?: number | undefined;
  readonly signal?: CancelSignal;
  /** Correlates the access log (x-request-id). */
  readonly requestId?: string | undefined;
}

type Reply<K extends keyof KServeMessages> = KServeMessages[K][1];
type Request<K extends keyof KServeMessages> = KServeMessages[K][0];

export function serverLive(): Reply<'ServerLive'> {
  return { live: true };
}

export function serverReady(engine: ServingEngine): Reply<'ServerReady'> {
  return { ready: v2ServerReady(engine) };
}

export function modelReady(engine: ServingEngine, req: Request<'ModelReady'>): Reply<'ModelReady'> {
  return { ready: v2ModelReady(engine, req.name ?? '', req.version ?? '') };
}

export function serverMetadata(engine: ServingEngine): Reply<'ServerMetadata'> {
  const m = v2ServerMetadata(engine, GRPC_EXTENSIONS);
  return { name: m.name, version: m.version, extensions: [...m.extensions] };
}

export function modelMetadata(engine: ServingEngine, req: Request<'ModelMetadata'>): Reply<'ModelMetadata'> {
  const m = v2ModelMetadata(engine, req.name ?? '', req.version ?? '');
  return {
    name: m.name,
    versions: [...m.versions],
    platform: m.platform,
    inputs: m.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })),
    outputs: m.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })),
    properties: { ...m.properties },
  };
}

/** The reply of a v2 inference: every output's values in raw_output_contents, in order. */
export function encodeInferResponse(res: V2InferResponse): WireModelInferResponse {
  return {
    model_name: res.model_name,
    model_version: res.model_version,
    id: res.id ?? '',
    parameters: encodeParameters(res.parameters),
    outputs: res.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: [...o.shape] })),
    raw_output_contents: res.outputs.map((o) => tensorToRaw(o.tensor)),
  };
}

/**
 * One ModelInfer: decode, run, encode. Rejects with a ServingError. A request refused before
 * the model runs for its tensors (malformed, raw and typed mixed) is counted as refused.
 */
export async function modelInfer(engine: ServingEngine, req: WireModelInferRequest, ctx: KServeCallContext): Promise<WireModelInferResponse> {
  let inputs;
  try {
    if (ctx.deadlineMs !== undefined && ctx.deadlineMs <= 0) throw new ServingError('E_DEADLINE_EXCEEDED', 'the request arrived after its deadline');
    inputs = decodeV2Tensors(req.inputs ?? [], req.raw_input_contents ?? [], 'input');
  } catch (err) {
    const error = toServingError(err);
    engine.countRefused('grpc', error.code);
    throw error;
  }
  const outputs = req.outputs ?? [];
  const parameters = decodeParameters(req.parameters);
  const context: V2InferContext = {
    transport: 'grpc',
    ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(ctx.deadlineMs !== undefined ? { deadlineMs: ctx.deadlineMs } : {}),
  };
  const res = await inferV2(
    engine,
    {
      model: req.model_name ?? '',
      version: req.model_version ?? '',
      ...(req.id ? { id: req.id } : {}),
      inputs,
      ...(outputs.length > 0 ? { outputs: outputs.map((o) => o.name ?? '') } : {}),
      ...(parameters ? { parameters } : {}),
    },
    context,
  );
  return encodeInferResponse(res);
}

/** A failed stream request's answer: the error text, and the request's id, model and version. */
export function streamError(req: WireModelInferRequest, error: ServingError): WireModelStreamInferResponse {
  return {
    error_message: error.message,
    infer_response: {
      model_name: req.model_name ?? '',
      model_version: req.model_version ?? '',
      id: req.id ?? '',
      parameters: { [STREAM_ERROR_CODE_PARAMETER]: { string_param: error.code } },
    },
  };
}

/** ModelStreamInfer: every request runs as a ModelInfer; its failure is an `error_message` reply, never the stream's end. */
export function modelStreamInferRpc(engine: ServingEngine, log: (line: string) => void): PipelinedRpc<WireModelInferRequest, WireModelStreamInferResponse> {
  return {
    name: 'ModelStreamInfer',
    async run(req, ctx) {
      try {
        return { error_message: '', infer_response: await modelInfer(engine, req, ctx) };
      } catch (err) {
        const error = toServingError(err);
        if (error.code === 'E_INTERNAL') log(`gRPC ModelStreamInfer ${req.model_name ?? ''}: internal error: ${(err as Error)?.stack ?? error.message}`);
        return streamError(req, error);
      }
    },
    internalError: streamError,
  };
}
