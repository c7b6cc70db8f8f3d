/**
 * The Open Inference Protocol's generate extension (Triton's, KServe's), on the KServe v2 paths:
 *
 *   POST /v2/models/{name}[/versions/{v}]/generate          one JSON reply
 *   POST /v2/models/{name}[/versions/{v}]/generate_stream   Server-Sent Events
 *
 * Request: a JSON object `{"id"?, "text_input": "...", "parameters"?: {...}, ...}`. Every
 * field but `id` and `parameters` is a method input of that name (`text_input` → the input
 * `text_input`), decoded by MindSpore's JSON rules (json-codec.ts: a string is a string
 * scalar, numbers take the input's declared dtype). `parameters` (max_tokens, temperature,
 * top_p, top_k, stop, seed, ...) become the request's parameters, which reach the method's
 * stream stage (`ctx.parameters`); a list of strings (`stop`) arrives as its JSON text.
 *
 * Reply: `{"id"?, "model_name", "model_version", "text_output": "...", <other outputs>}`; an
 * output of one string element is that string, any other its JSON value (nested lists). For
 * a streaming method, /generate waits for the whole text (the partial results joined);
 * /generate_stream sends one data-only event per partial result with `"done": false`, then
 * `{"id"?, "model_name", "model_version", "text_output": "", "done": true}`. A failure before
 * the first event is an ordinary `{"error"}` reply with the error's status (400 bad input or
 * parameters, 404 unknown model, 503 overloaded, 504 deadline, 500 generation failed); after
 * it, a `data: {"error": "..."}` event, then the final one.
 *
 * Model names and versions are KServe v2's (transports/kserve/models.ts): `tiny_lm` is the
 * servable's default method, `tiny_lm.generate` names the method.
 */
import { ServingError, toServingError } from '../../engine/errors.js';
import { type Instance, type Tensor, elementCount } from '../../engine/tensor.js';
import type { MethodTarget, ServingEngine, TargetInferOptions } from '../../facade/engine.js';
import { parseV2Version, v2Target } from '../kserve/models.js';
import { requestParameters, startStream } from '../stream-events.js';
import type { CodecSet } from './codec.js';
import { JSON_TYPE, type Reply, type StreamedReply } from './exchange.js';
import { decodeJsonRequest, tensorJson } from './json-codec.js';
import { v2ErrorJson, v2ErrorReply } from './kserve-response.js';
import { preview } from './parsed-value.js';
import { type PathPattern, pathTemplate } from './path-pattern.js';
import type { BodyRequest, BodyRoute } from './route-table.js';
import { type SseFormat, sseEvent, sseReply } from './sse.js';

type ModelParams = { readonly name: string; readonly version?: string };

/** The generate routes, their paths made v2 paths by `v2` (errors as `{"error"}`), framing errors by `codecs`. */
export function generateRoutes(v2: <P>(p: PathPattern<P>) => PathPattern<P>, codecs: CodecSet): BodyRoute<ModelParams>[] {
  const route = (path: PathPattern<ModelParams>, streamed: boolean): BodyRoute<ModelParams> => ({
    method: 'post',
    path: v2(path),
    codecs,
    answer: (engine, request) => generate(engine, request, streamed),
  });
  return [
    route(pathTemplate('/v2/models/{name}/generate'), false),
    route(pathTemplate('/v2/models/{name}/versions/{version}/generate'), false),
    route(pathTemplate('/v2/models/{name}/generate_stream'), true),
    route(pathTemplate('/v2/models/{name}/versions/{version}/generate_stream'), true),
  ];
}

/** A generate body: the request id, the inputs by name (JSON values), the parameters. */
interface GenerateBody {
  readonly id: string | undefined;
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly parameters: unknown;
}

async function generate(engine: ServingEngine, request: BodyRequest<ModelParams>, streamed: boolean): Promise<Reply | StreamedReply> {
  const { name } = request.params;
  let version: number;
  try {
    version = parseV2Version(request.params.version);
  } catch (err) {
    engine.countRefused('rest', toServingError(err).code);
    return v2ErrorReply(err);
  }
  let target: MethodTarget;
  try {
    target = v2Target(engine, name, version, { transport: 'rest', requestId: request.requestId });
  } catch (err) {
    return v2ErrorReply(err); // counted by the facade
  }
  let body: GenerateBody;
  let instance: Instance;
  const options: TargetInferOptions = { transport: 'rest', requestId: request.requestId, signal: request.signal };
  if (request.deadlineMs !== undefined) options.deadlineMs = request.deadlineMs;
  try {
    body = readBody(request.body);
    instance = decodeJsonRequest(Buffer.from(JSON.stringify({ instances: [body.inputs] })), target.info.inputs)[0]!;
    const parameters = requestParameters(body.parameters);
    if (parameters !== undefined) options.parameters = parameters;
  } catch (err) {
    engine.countRefused('rest', toServingError(err).code);
    return v2ErrorReply(err);
  }
  const head = `{${body.id !== undefined ? `"id":${JSON.stringify(body.id)},` : ''}"model_name":${JSON.stringify(name)},"model_version":${JSON.stringify(String(target.version))}`;
  try {
    if (streamed) return sseReply(await startStream(target.inferStream([instance], options), 1), generateFormat(head, target.info.outputs));
    const [outcome] = await target.inferEach([instance], options);
    if (outcome instanceof ServingError) return v2ErrorReply(outcome);
    return { status: 200, contentType: JSON_TYPE, body: `${head}${outputsJson(outcome!)}}` };
  } catch (err) {
    const e = toServingError(err);
    if (e.code === 'E_INTERNAL') engine.log(`generate ${preview(name, 80)}: ${(err as Error)?.stack ?? e.message}`);
    return v2ErrorReply(e);
  }
}

function readBody(bytes: Uint8Array): GenerateBody {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new ServingError('E_INVALID_ARGUMENT', `the request body is not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ServingError('E_INVALID_ARGUMENT', 'the request body must be a JSON object such as {"text_input": "...", "parameters": {"max_tokens": 16}}');
  }
  const { id, parameters, ...inputs } = doc as Record<string, unknown>;
  if (id !== undefined && typeof id !== 'string') throw new ServingError('E_INVALID_ARGUMENT', `"id" must be a string, got ${JSON.stringify(id)}`);
  if (Object.keys(inputs).length === 0) {
    throw new ServingError('E_MISSING_INPUT', 'the request names no inputs: send {"text_input": "...", "parameters": {...}}');
  }
  return { id, inputs, parameters };
}

/** `,"<output>":<value>` for each output: a one-element string output is that string; others their JSON value. */
function outputsJson(outputs: Instance): string {
  let out = '';
  for (const [name, t] of Object.entries(outputs)) out += `,${JSON.stringify(name)}:${valueJson(t, name)}`;
  return out;
}

function valueJson(t: Tensor, name: string): string {
  if (t.dtype === 'string' && t.shape.length > 0 && elementCount(t.shape) === 1) return tensorJson({ ...t, shape: [] }, name);
  return tensorJson(t, name);
}

/** generate_stream's data-only events (see the header); `head` is the reply's opening `{"id"?, "model_name", "model_version"`. */
function generateFormat(head: string, outputs: readonly string[]): SseFormat {
  const error = (e: ServingError): string => sseEvent(v2ErrorJson(e.message));
  const last = sseEvent(`${head}${outputs.includes('text_output') ? ',"text_output":""' : ''},"done":true}`);
  return {
    event(e) {
      if ('error' in e) return error(e.error);
      try {
        return sseEvent(`${head}${outputsJson(e.outputs)},"done":false}`);
      } catch (err) {
        return error(toServingError(err));
      }
    },
    failure: error,
    end: () => last,
  };
}
