/**
 * The repository index and the load/unload control API (for users coming from Triton or
 * TorchServe). Off by default: served only when the REST option `controlApi` is true (the
 * `serve --control-api` flag, config key `rest.controlApi`), since whoever reaches the port
 * can then stop servables.
 *
 *   GET  /repository/index                       200 [{"name","directory","available":[..],"loaded":[..]}]
 *   POST /repository/servables/{name}/load       200 {"name","loaded":[..]}; body optional: {"version": n}
 *   POST /repository/servables/{name}/unload     200 {"name","unloaded":[..]} once its in-flight requests ended
 *
 * They map onto the facade's `repositoryIndex()`, `loadServable()` and `unloadServable()`.
 * Errors are `{"error_msg": ...}` with the code's status: 404 for a servable the directory
 * does not hold (load) or that is not loaded (unload), 400 for one already loaded or a bad
 * body, 500 when it fails to load.
 */
import { ServingError, toServingError } from '../../engine/errors.js';
import type { ServingEngine } from '../../facade/engine.js';
import { CodecSet } from './codec.js';
import { JSON_TYPE, type Reply } from './exchange.js';
import { MindSporeJsonCodec } from './mindspore-codecs.js';
import { encodeJsonError } from './json-codec.js';
import { pathTemplate } from './path-pattern.js';
import type { BodyRequest, Route } from './route-table.js';

/** Replies are JSON whatever the Accept header says; the codecs only shape framing errors (413, 408). */
const JSON_ONLY = new CodecSet([], new MindSporeJsonCodec());

const json = (value: unknown): Reply => ({ status: 200, contentType: JSON_TYPE, body: JSON.stringify(value) });

function failure(err: unknown): Reply {
  const e = toServingError(err);
  return { status: e.httpStatus, contentType: JSON_TYPE, body: encodeJsonError(e.message) };
}

/** The optional load body: empty, or `{"version": <integer ≥ 0>}` (0 = the newest, followed by hot reload). */
function loadVersion(body: Uint8Array): number {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8').trim();
  if (text === '') return 0;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ServingError('E_INVALID_ARGUMENT', 'the load body must be empty or JSON {"version": <n>}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ServingError('E_INVALID_ARGUMENT', 'the load body must be a JSON object {"version": <n>}');
  const { version, ...rest } = parsed as { version?: unknown };
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new ServingError('E_INVALID_ARGUMENT', `the load body takes only "version", got ${JSON.stringify(extra[0])}`);
  if (version === undefined) return 0;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    throw new ServingError('E_INVALID_ARGUMENT', `"version" must be an integer >= 0, got ${JSON.stringify(version)}`);
  }
  return version;
}

type NameParams = { readonly name: string };

export const CONTROL_ROUTES: readonly Route<unknown>[] = [
  {
    method: 'get',
    path: pathTemplate('/repository/index'),
    codecs: JSON_ONLY,
    answer: (engine: ServingEngine) => engine.repositoryIndex().then(json, failure),
  },
  {
    method: 'post',
    path: pathTemplate('/repository/servables/{name}/load'),
    codecs: JSON_ONLY,
    answer: async (engine: ServingEngine, request: BodyRequest<NameParams>) => {
      try {
        const loaded = await engine.loadServable(request.params.name, loadVersion(request.body));
        return json({ name: request.params.name, loaded });
      } catch (err) {
        return failure(err);
      }
    },
  },
  {
    method: 'post',
    path: pathTemplate('/repository/servables/{name}/unload'),
    codecs: JSON_ONLY,
    answer: (engine: ServingEngine, request: BodyRequest<NameParams>) =>
      engine.unloadServable(request.params.name).then((unloaded) => json({ name: request.params.name, unloaded }), failure),
  },
] as Route<unknown>[];
