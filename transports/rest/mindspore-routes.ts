/**
 * MindSpore Serving's REST protocol as route-table entries: one predict route, whose URLs are
 * parsed strictly (not by substring search as the reference does):
 *
 *   POST /model/<servable>:<method>
 *   POST /model/<servable>/version/<n>:<method>
 *   POST /version/<n>/model/<servable>:<method>     (MindSpore accepts this order too)
 *
 * Version 0 or none = the newest loaded version. Segments are percent-decoded. The query
 * string is not part of the path (uWS strips it) and is ignored. Every path under `/model` or
 * `/version` belongs to the predict route, so a wrong HTTP method is a 405 and a malformed
 * URL a 400 that says what is wrong. Bodies are JSON or msgpack (mindspore-codecs.ts); replies
 * JSON, msgpack, or Server-Sent Events with `Accept: text/event-stream` (predict.ts, sse.ts).
 */
import type { InstancesParser } from './json-codec.js';
import { mindsporeCodecs } from './mindspore-codecs.js';
import { preview } from './parsed-value.js';
import { PathError, type PathPattern } from './path-pattern.js';
import { type PredictTarget, predict } from './predict.js';
import type { BodyRoute } from './route-table.js';

const PREDICT_TEXT = '/model/<servable>[/version/<n>]:<method>';
const USAGE = `use POST ${PREDICT_TEXT}`;
const MODEL_RE = /^\/model\/([^/:]+)(?:\/version\/([^/:]*))?:(.*)$/;
const VERSION_FIRST_RE = /^\/version\/([^/:]*)\/model\/([^/:]+):(.*)$/;
const PREDICT_PREFIX_RE = /^\/(?:model|version)(?:[/:]|$)/;
const NO_SERVABLE_RE = /^\/model\/?$/;
const NO_METHOD_RE = /^\/model\/[^/:]+(?:\/version\/[^/:]*)?\/?$/;
const VERSION_RE = /^\d{1,10}$/;

export const PREDICT_PATH: PathPattern<PredictTarget> = {
  text: PREDICT_TEXT,
  owns: (path) => PREDICT_PREFIX_RE.test(path),
  parse: parsePredictPath,
  wrongMethod: (allow) => `predict URLs only answer ${allow}; ${USAGE}`,
};

function parsePredictPath(url: string): PredictTarget | PathError {
  const bad = (why: string): PathError => new PathError(`bad predict URL ${preview(url, 80)}: ${why}; ${USAGE}`);
  let servable: string;
  let versionText: string | undefined;
  let method: string;
  let m = MODEL_RE.exec(url);
  if (m) [, servable, versionText, method] = m as unknown as [string, string, string | undefined, string];
  else if ((m = VERSION_FIRST_RE.exec(url))) [, versionText, servable, method] = m as unknown as [string, string, string, string];
  else if (NO_SERVABLE_RE.test(url) || url.startsWith('/model:') || url.startsWith('/model//')) return bad('it names no servable');
  else if (NO_METHOD_RE.test(url)) return bad("it names no method (expected ':<method>' at the end)");
  else return bad('it does not have the expected form');
  if (method === '') return bad("it names no method after ':'");
  let version = 0;
  if (versionText !== undefined) {
    if (!VERSION_RE.test(versionText) || Number(versionText) > 0xfffffffe) {
      return bad(`version ${preview(versionText)} is not an integer in [0, 4294967294]`);
    }
    version = Number(versionText);
  }
  try {
    return { servable: decodeURIComponent(servable), version, method: decodeURIComponent(method) };
  } catch {
    return bad('it holds an invalid percent-encoding');
  }
}

export interface MindSporeRouteOptions {
  /** Step 1 of JSON decoding (default: native/index.ts `parseInstances`). */
  readonly parseInstances?: InstancesParser | undefined;
}

/** MindSpore's routes; register them before the probes so the 404 list names predict first. */
export function mindsporeRoutes(options: MindSporeRouteOptions = {}): [BodyRoute<PredictTarget>] {
  // Accept is read again by the handler: text/event-stream asks for Server-Sent Events
  return [{ method: 'post', path: PREDICT_PATH, codecs: mindsporeCodecs(options.parseInstances), headers: ['accept'], answer: predict }];
}
