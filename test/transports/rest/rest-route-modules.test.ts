// A second protocol module's routes (fixtures/demo-routes.ts, test-only) served by a real
// server next to MindSpore's: its templates, probe and inference route answer, the table's
// 404/405 cover them, and the server's framing (negotiated errors, request id) applies.
import t from 'tap';
import { Packr, Unpackr } from 'msgpackr';
import { startRestfulServer, type RestServer } from '../../../dist/transports/rest/server.js';
import { DEMO_ROUTES } from './fixtures/demo-routes.js';
import { SEED_BODY, SEED_REPLY, request, startEngine, type EngineFixture, type RequestOptions } from './fixtures/rest.js';

let env: EngineFixture;
let rest: RestServer;

t.before(async () => {
  env = await startEngine('route-modules');
  rest = await startRestfulServer(env.engine, '127.0.0.1:0', { maxBodyBytes: 4096 }, DEMO_ROUTES);
});
t.teardown(async () => {
  await rest?.close();
  await env?.stop();
});

const call = (path: string, o: RequestOptions = {}) => request({ port: rest.port }, path, o);
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

t.test("the module's head routes", async (t) => {
  let r = await call('/demo/live');
  t.same([r.status, r.headers['content-type'], r.text], [200, 'text/plain', 'live']);
  r = await call('/demo/models/add');
  t.same([r.status, r.json], [200, { name: 'add', inputs: ['x1', 'x2'] }]);
  r = await call('/demo/models/nope');
  t.equal(r.status, 404);
  t.match(r.text, /servable 'nope' is not loaded/);
});

t.test("the module's body route: codecs negotiated, request id returned, the headers it declared", async (t) => {
  let r = await call('/demo/models/add/infer', { body: SEED_BODY, headers: { 'x-request-id': 'demo-1' } });
  t.same([r.status, r.headers['content-type'], r.headers['x-request-id'], r.json], [200, 'application/json', 'demo-1', SEED_REPLY]);
  t.equal(r.headers['x-demo-tag'], undefined, 'no header, no reply header');
  r = await call('/demo/models/add/infer', { body: SEED_BODY, headers: { 'x-request-id': 'demo-2', 'X-Demo-Tag': 'blue' } });
  t.same([r.status, r.headers['x-request-id'], r.headers['x-demo-tag']], [200, 'demo-2', 'blue'], 'a declared request header reaches the handler; its reply headers are sent');
  const f = Buffer.from(Float32Array.of(1, 2, 3, 4).buffer);
  const body = new Packr({ useRecords: false }).pack({ instances: { x1: { dtype: 'float32', shape: [2, 2], data: f }, x2: { dtype: 'float32', shape: [2, 2], data: f } } });
  r = await call('/demo/models/add/infer', { body, headers: { 'content-type': 'application/msgpack', accept: 'application/msgpack' } });
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'application/msgpack');
  const y = (unpackr.unpack(r.body) as { instances: { y: { data: Uint8Array } }[] }).instances[0]!.y;
  t.same([...new Float32Array(Uint8Array.from(y.data).buffer)], [2, 4, 6, 8]);
});

t.test('framing errors answer in the codec the route negotiated', async (t) => {
  let r = await call('/demo/models/add/infer', { body: 'x'.repeat(5000), headers: { accept: 'application/msgpack' } });
  t.equal(r.status, 413);
  t.equal(r.headers['content-type'], 'application/msgpack');
  t.match(unpackr.unpack(r.body), { error_msg: /more than the limit of 4096 bytes/ });
  r = await call('/demo/models/add/infer', { body: SEED_BODY, headers: { 'x-deadline-ms': 'soon' } });
  t.equal(r.status, 400);
  t.match(r.json, { error_msg: /X-Deadline-Ms header must be a positive number/ });
});

t.test('the table covers the module: 405 with Allow, 400 for a bad parameter, the 404 list', async (t) => {
  let r = await call('/demo/models/add/infer');
  t.same([r.status, r.headers.allow, r.json], [405, 'POST', { error_msg: '/demo/models/{name}/infer only answers POST' }]);
  r = await call('/demo/live', { body: '{}' });
  t.same([r.status, r.headers.allow], [405, 'GET']);
  r = await call('/demo/models/%ZZ/infer', { body: SEED_BODY });
  t.same([r.status, r.json], [400, { error_msg: 'bad URL "/demo/models/%ZZ/infer": {name} holds an invalid percent-encoding' }]);
  r = await call('/demo');
  t.equal(r.status, 404);
  t.equal(
    (r.json as { error_msg?: unknown }).error_msg,
    'there is nothing at "/demo"; use POST /model/<servable>[/version/<n>]:<method>, /v2/models/{name}/infer, /v2/models/{name}/versions/{version}/infer, ' +
      '/v2/models/{name}/generate, /v2/models/{name}/versions/{version}/generate, /v2/models/{name}/generate_stream, /v2/models/{name}/versions/{version}/generate_stream, /demo/models/{name}/infer, ' +
      'or GET /model/<servable>[/version/<n>], /healthz, /readyz, /metrics, /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}, /v2/models/{name}/versions/{version}, ' +
      '/v2/models/{name}/ready, /v2/models/{name}/versions/{version}/ready, /demo/live, /demo/models/{name}',
  );
});

t.test("MindSpore's routes and the probes are still served", async (t) => {
  let r = await call('/model/add:add_common', { body: SEED_BODY });
  t.same([r.status, r.json], [200, SEED_REPLY]);
  r = await call('/healthz');
  t.same([r.status, r.json], [200, { live: true }]);
});
