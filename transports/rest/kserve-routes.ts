/**
 * KServe v2 (Open Inference Protocol) over REST, on the same port as MindSpore's routes:
 *
 *   GET  /v2                                          server metadata {"name","version","extensions"}
 *   GET  /v2/health/live                              200 {"live":true}
 *   GET  /v2/health/ready                             200 {"ready":true}; 503 {"error"} when not ready
 *   GET  /v2/models/{name}[/versions/{v}]             model metadata
 *   GET  /v2/models/{name}[/versions/{v}]/ready       200 {"name","ready":true}; 503 {"error"} when not ready
 *   POST /v2/models/{name}[/versions/{v}]/infer       inference: JSON or JSON + binary tensor data
 *                                                     (kserve-request.ts, kserve-response.ts)
 *   POST /v2/models/{name}[/versions/{v}]/generate    the generate extension: one JSON reply,
 *   POST /v2/models/{name}[/versions/{v}]/generate_stream   or Server-Sent Events (generate-routes.ts)
 *
 * Model names and versions: transports/kserve/models.ts (`add` is servable add's default
 * method, `add.add_cast` its method add_cast). Every failure is `{"error": "..."}` with the
 * error code's status (400 bad request, 404 unknown model/version/path, 405 wrong method,
 * 503 overloaded/not ready/stopping, 500 a failing model or stage), also for the route
 * table's refusals and framing errors (413, 408) on these paths. Inference requests are counted
 * in the metrics and the access log under transport "rest".
 */
import { toServingError } from '../../engine/errors.js';
import type { ServingEngine } from '../../facade/engine.js';
import { inferV2 } from '../kserve/infer.js';
import { v2ModelInfo, v2ModelMetadata, v2ModelReady, v2ServerMetadata, v2ServerReady } from '../kserve/models.js';
import { type Codec, CodecSet } from './codec.js';
import { JSON_TYPE, type Reply } from './exchange.js';
import { type V2HttpRequest, decodeRawRequest, decodeV2Request, headerLength } from './kserve-request.js';
import { v2ErrorJson, v2ErrorReply, v2InferReply } from './kserve-response.js';
import { generateRoutes } from './generate-routes.js';
import { preview } from './parsed-value.js';
import { type PathPattern, exactPath, pathTemplate } from './path-pattern.js';
import type { BodyRequest, BodyRoute, NoBodyRoute, Route } from './route-table.js';

const USAGE =
  'KServe v2 serves GET /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{v}], /v2/models/{name}[/versions/{v}]/ready, and POST /v2/models/{name}[/versions/{v}]/infer, /generate, /generate_stream';

/** A v2 path: the route table's refusals on it are `{"error": ...}`. */
function v2<P>(pattern: PathPattern<P>): PathPattern<P> {
  return { ...pattern, encodeError: v2ErrorJson, wrongMethod: (allow) => `${pattern.text} only answers ${allow}` };
}

/** Everything else under /v2/: a v2 404 (registered after the v2 routes; see PathPattern.fallback). */
const V2_SPACE: PathPattern<Readonly<Record<string, never>>> = {
  text: '/v2/...',
  fallback: true,
  owns: (path) => path.startsWith('/v2/'),
  parse: () => ({}),
  encodeError: v2ErrorJson,
  wrongMethod: () => `there is nothing at this path; ${USAGE}`,
};

/**
 * Only the v2 error format: inference bodies are decoded by the route itself (the binary
 * extension needs a header a RequestDecoder does not see), so the codec set only shapes the
 * server's framing errors (413, 408, a bad X-Deadline-Ms).
 */
const V2_ERRORS: Codec = {
  name: 'kserve-v2',
  contentType: JSON_TYPE,
  decode: () => {
    throw new Error('KServe v2 bodies are decoded by kserve-request.ts');
  },
  encodeOutcomes: () => {
    throw new Error('KServe v2 replies are encoded by kserve-response.ts');
  },
  encodeError: v2ErrorJson,
};
const V2_CODECS = new CodecSet([], V2_ERRORS);

const ok = (value: unknown): Reply => ({ status: 200, contentType: JSON_TYPE, body: JSON.stringify(value) });
const unavailable = (message: string): Reply => ({ status: 503, contentType: JSON_TYPE, body: v2ErrorJson(message) });

type ModelParams = { readonly name: string; readonly version?: string };

function metadata(engine: ServingEngine, p: ModelParams): Reply {
  try {
    return ok(v2ModelMetadata(engine, p.name, p.version));
  } catch (err) {
    return v2ErrorReply(err);
  }
}

function modelReady(engine: ServingEngine, p: ModelParams): Reply {
  try {
    if (v2ModelReady(engine, p.name, p.version)) return ok({ name: p.name, ready: true });
    return unavailable(`model ${JSON.stringify(p.name)}${p.version ? ` version ${p.version}` : ''} is not ready (no live device actor)`);
  } catch (err) {
    return v2ErrorReply(err);
  }
}

function serverReady(engine: ServingEngine): Reply {
  if (v2ServerReady(engine)) return ok({ ready: true });
  const health = engine.health();
  const waiting = health.servables.filter((s) => !s.ready).map((s) => `${s.name} version ${s.version}`);
  return unavailable(health.servables.length === 0 ? 'not ready: no servable is loaded' : `not ready: ${waiting.join(', ')} has no live device actor`);
}

async function infer(engine: ServingEngine, request: BodyRequest<ModelParams>): Promise<Reply> {
  const { name, version } = request.params;
  let decoded: V2HttpRequest;
  try {
    const jsonLength = headerLength(request.headers['inference-header-content-length'] ?? '');
    decoded = jsonLength === 0 ? decodeRawRequest(request.body, v2ModelInfo(engine, name, version), name) : decodeV2Request(request.body, jsonLength);
  } catch (err) {
    engine.countRefused('rest', toServingError(err).code);
    return v2ErrorReply(err);
  }
  try {
    const response = await inferV2(
      engine,
      {
        model: name,
        ...(version !== undefined ? { version } : {}),
        ...(decoded.id !== undefined ? { id: decoded.id } : {}),
        inputs: decoded.inputs,
        ...(decoded.outputs !== undefined ? { outputs: decoded.outputs } : {}),
        ...(decoded.parameters !== undefined ? { parameters: decoded.parameters } : {}),
      },
      {
        transport: 'rest',
        requestId: request.requestId,
        signal: request.signal,
        ...(request.deadlineMs !== undefined ? { deadlineMs: request.deadlineMs } : {}),
      },
    );
    return v2InferReply(response, (output) => decoded.binaryOutputs.get(output) ?? decoded.binaryDefault);
  } catch (err) {
    const e = toServingError(err);
    if (e.code === 'E_INTERNAL') engine.log(`KServe v2 REST infer ${preview(name, 80)}: ${(err as Error)?.stack ?? e.message}`);
    return v2ErrorReply(e);
  }
}

const get = <P>(path: PathPattern<P>, answer: (engine: ServingEngine, params: P) => Reply): NoBodyRoute<P> => ({ method: 'get', path: v2(path), answer });
const post = (path: PathPattern<ModelParams>): BodyRoute<ModelParams> => ({
  method: 'post',
  path: v2(path),
  codecs: V2_CODECS,
  headers: ['inference-header-content-length'],
  answer: infer,
});
const nothingHere = (): Reply => ({ status: 404, contentType: JSON_TYPE, body: v2ErrorJson(`there is nothing at this path; ${USAGE}`) });

export const KSERVE_ROUTES: readonly Route<unknown>[] = [
  get(exactPath('/v2'), (engine) => ok(v2ServerMetadata(engine))),
  get(exactPath('/v2/health/live'), () => ok({ live: true })),
  get(exactPath('/v2/health/ready'), serverReady),
  get(pathTemplate('/v2/models/{name}'), metadata),
  get(pathTemplate('/v2/models/{name}/versions/{version}'), metadata),
  get(pathTemplate('/v2/models/{name}/ready'), modelReady),
  get(pathTemplate('/v2/models/{name}/versions/{version}/ready'), modelReady),
  post(pathTemplate('/v2/models/{name}/infer')),
  post(pathTemplate('/v2/models/{name}/versions/{version}/infer')),
  ...generateRoutes(v2, V2_CODECS),
  { method: 'get', path: V2_SPACE, answer: nothingHere },
  { method: 'post', path: V2_SPACE, answer: nothingHere },
] as Route<unknown>[];
