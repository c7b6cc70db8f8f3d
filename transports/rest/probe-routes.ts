/**
 * Probe and scrape routes, independent of any inference protocol:
 *
 *   GET /healthz   200 {"live":true} while the server runs
 *   GET /readyz    200 when `engine.health().ready`, else 503; the body is `engine.health()`
 *   GET /metrics   Prometheus text (404 when the engine keeps no metrics)
 */
import { PROMETHEUS_CONTENT_TYPE } from '../../engine/metrics.js';
import { JSON_TYPE } from './exchange.js';
import { encodeJsonError } from './json-codec.js';
import { exactPath } from './path-pattern.js';
import type { NoBodyRoute } from './route-table.js';

type Probe = NoBodyRoute<Readonly<Record<string, never>>>;

const LIVE = '{"live":true}';

export const PROBE_ROUTES: readonly Probe[] = [
  { method: 'get', path: exactPath('/healthz'), answer: () => ({ status: 200, contentType: JSON_TYPE, body: LIVE }) },
  {
    method: 'get',
    path: exactPath('/readyz'),
    answer: (engine) => {
      const h = engine.health();
      return { status: h.ready ? 200 : 503, contentType: JSON_TYPE, body: JSON.stringify(h) };
    },
  },
  {
    method: 'get',
    path: exactPath('/metrics'),
    answer: (engine) =>
      engine.metrics
        ? { status: 200, contentType: PROMETHEUS_CONTENT_TYPE, body: engine.metrics.render() }
        : { status: 404, contentType: JSON_TYPE, body: encodeJsonError('metrics are disabled on this server') },
  },
];
