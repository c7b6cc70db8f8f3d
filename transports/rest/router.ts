/**
 * Request line → route. Predict URLs are parsed strictly (not by substring search as the
 * reference does):
 *
 *   POST /model/<servable>:<method>
 *   POST /model/<servable>/version/<n>:<method>
 *   POST /version/<n>/model/<servable>:<method>     (MindSpore accepts this order too)
 *
 * Version 0 or none = the newest loaded version. Segments are percent-decoded. The query
 * string is not part of the path (uWS strips it) and is ignored.
 */
import { preview } from './parsed-value.js';

export type Route =
  | { readonly kind: 'predict'; readonly servable: string; readonly version: number; readonly method: string }
  | { readonly kind: 'healthz' }
  | { readonly kind: 'readyz' }
  | { readonly kind: 'metrics' }
  | { readonly kind: 'error'; readonly status: 400 | 404 | 405; readonly message: string; readonly allow?: string };

const USAGE = 'use POST /model/<servable>[/version/<n>]:<method>';
const MODEL_RE = /^\/model\/([^/:]+)(?:\/version\/([^/:]*))?:(.*)$/;
const VERSION_FIRST_RE = /^\/version\/([^/:]*)\/model\/([^/:]+):(.*)$/;
const PREDICT_PREFIX_RE = /^\/(?:model|version)(?:[/:]|$)/;

/** `method` is lowercase (as uWS reports it); `url` is the path without the query string. */
export function route(method: string, url: string): Route {
  if (url === '/healthz' || url === '/readyz' || url === '/metrics') {
    if (method !== 'get') return { kind: 'error', status: 405, message: `${url} only answers GET`, allow: 'GET' };
    return { kind: url === '/healthz' ? 'healthz' : url === '/readyz' ? 'readyz' : 'metrics' };
  }
  if (!PREDICT_PREFIX_RE.test(url)) {
    return { kind: 'error', status: 404, message: `there is nothing at ${preview(url, 80)}; ${USAGE}, or GET /healthz, /readyz, /metrics` };
  }
  if (method !== 'post') return { kind: 'error', status: 405, message: `predict URLs only answer POST; ${USAGE}`, allow: 'POST' };
  return predictRoute(url);
}

function predictRoute(url: string): Route {
  const bad = (why: string): Route => ({ kind: 'error', status: 400, message: `bad predict URL ${preview(url, 80)}: ${why}; ${USAGE}` });
  let servable: string;
  let versionText: string | undefined;
  let method: string;
  let m = MODEL_RE.exec(url);
  if (m) [, servable, versionText, method] = m as unknown as [string, string, string | undefined, string];
  else if ((m = VERSION_FIRST_RE.exec(url))) [, versionText, servable, method] = m as unknown as [string, string, string, string];
  else if (/^\/model\/?$/.test(url) || url.startsWith('/model:') || url.startsWith('/model//')) return bad('it names no servable');
  else if (/^\/model\/[^/:]+(?:\/version\/[^/:]*)?\/?$/.test(url)) return bad("it names no method (expected ':<method>' at the end)");
  else return bad('it does not have the expected form');
  if (method === '') return bad("it names no method after ':'");
  let version = 0;
  if (versionText !== undefined) {
    if (!/^\d{1,10}$/.test(versionText) || Number(versionText) > 0xfffffffe) {
      return bad(`version ${preview(versionText)} is not an integer in [0, 4294967294]`);
    }
    version = Number(versionText);
  }
  try {
    return { kind: 'predict', servable: decodeURIComponent(servable), version, method: decodeURIComponent(method) };
  } catch {
    return bad('it holds an invalid percent-encoding');
  }
}
