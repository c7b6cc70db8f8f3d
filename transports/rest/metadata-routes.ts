/**
 * Model metadata (for users coming from Triton or TorchServe): what a loaded servable version
 * takes and returns, from the facade's `metadata()`.
 *
 *   GET /model/<servable>                  the newest loaded version
 *   GET /model/<servable>/version/<n>      version n (0 = the newest)
 *
 * 200 `{"name","version","versions":[...],"methods":[{"name","inputs":[{"name","dtype","dims"}],
 * "outputs":[{"name"}]}]}`; `dtype` and `dims` are present where an input feeds a model
 * directly (a string dim or -1 is dynamic). An unknown servable or version is 404
 * `{"error_msg": ...}`. The path space is shared with MindSpore's predict URLs by method (the
 * route table tries the next owner of a path for a method the first does not answer): every
 * POST under `/model` stays a predict request.
 */
import { toServingError } from '../../engine/errors.js';
import type { ServableMetadata, ServingEngine } from '../../facade/engine.js';
import { JSON_TYPE, type Reply } from './exchange.js';
import { encodeJsonError } from './json-codec.js';
import { preview } from './parsed-value.js';
import { PathError, type PathPattern } from './path-pattern.js';
import type { NoBodyRoute } from './route-table.js';

export interface MetadataTarget {
  readonly servable: string;
  /** 0 = the newest loaded. */
  readonly version: number;
}

const METADATA_TEXT = '/model/<servable>[/version/<n>]';
const METADATA_RE = /^\/model\/([^/:]+)(?:\/version\/([^/:]*))?\/?$/;
const VERSION_RE = /^\d{1,10}$/;

export const METADATA_PATH: PathPattern<MetadataTarget> = {
  text: METADATA_TEXT,
  owns: (path) => METADATA_RE.test(path),
  parse: (path) => {
    const m = METADATA_RE.exec(path)!;
    const bad = (why: string): PathError => new PathError(`bad model metadata URL ${preview(path, 80)}: ${why}; use GET ${METADATA_TEXT}`);
    const versionText = m[2];
    if (versionText !== undefined && (!VERSION_RE.test(versionText) || Number(versionText) > 0xfffffffe)) {
      return bad(`version ${preview(versionText)} is not an integer in [0, 4294967294]`);
    }
    try {
      return { servable: decodeURIComponent(m[1]!), version: versionText === undefined ? 0 : Number(versionText) };
    } catch {
      return bad('it holds an invalid percent-encoding');
    }
  },
  wrongMethod: (allow) => `model metadata URLs only answer ${allow}; to predict, use POST /model/<servable>[/version/<n>]:<method>`,
};

/** The JSON form of a servable version's metadata (also what `actorserve` documents in docs/operating.md). */
export function metadataJson(m: ServableMetadata): string {
  return JSON.stringify({
    name: m.name,
    version: m.version,
    versions: m.versions,
    methods: m.methods.map((method) => ({
      name: method.name,
      inputs: method.inputs,
      outputs: method.outputs.map((name) => ({ name })),
    })),
  });
}

function answer(engine: ServingEngine, params: MetadataTarget): Reply {
  try {
    return { status: 200, contentType: JSON_TYPE, body: metadataJson(engine.metadata(params.servable, params.version)) };
  } catch (err) {
    const e = toServingError(err);
    return { status: e.httpStatus, contentType: JSON_TYPE, body: encodeJsonError(e.message) };
  }
}

export const METADATA_ROUTES: readonly NoBodyRoute<MetadataTarget>[] = [{ method: 'get', path: METADATA_PATH, answer }];
