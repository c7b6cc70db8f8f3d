// Operations over REST: /metrics in Prometheus format, X-Request-Id echoed, server.startRestfulServer.
import t from 'tap';
import { ServingServer } from '../../../dist/server.js';
import { ServableStartConfig } from '../../../dist/engine/start-config.js';
import { addModel } from '../../../dist/servables/example-models.js';
import { ADD_CONFIG, servableFixture } from '../../helpers/fixtures.js';

const fx = servableFixture('rest-ops');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
const engine = new ServingServer();
engine.log = () => {};
let base = '';
t.before(async () => {
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add' }));
  const rest = await engine.startRestfulServer('127.0.0.1:0');
  base = `http://127.0.0.1:${rest.port}`;
});
t.teardown(async () => {
  await engine.stop();
  fx.remove();
});
const body = JSON.stringify({ instances: { x1: [[1, 1], [1, 1]], x2: [[1, 1], [1, 1]] } });

t.test('X-Request-Id is echoed, or generated when absent', async (t) => {
  const mine = await fetch(`${base}/model/add:add_common`, { method: 'POST', body, headers: { 'x-request-id': 'client-42' } });
  t.equal(mine.status, 200);
  t.equal(mine.headers.get('x-request-id'), 'client-42');
  const generated = await fetch(`${base}/model/add:add_common`, { method: 'POST', body });
  t.match(generated.headers.get('x-request-id'), /^[0-9a-f-]{36}$/);
  const junk = await fetch(`${base}/model/add:add_common`, { method: 'POST', body, headers: { 'x-request-id': 'a b' } });
  t.match(junk.headers.get('x-request-id'), /^[0-9a-f-]{36}$/, 'an unprintable id is replaced');
});

t.test('GET /metrics serves the Prometheus text format, counting REST requests', async (t) => {
  const r = await fetch(`${base}/metrics`);
  t.equal(r.status, 200);
  t.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  t.match(text, /actorserve_requests_total\{servable="add",method="add_common",version="1",transport="rest"\} 3/);
  t.match(text, /# TYPE actorserve_request_duration_seconds histogram/);
  const post = await fetch(`${base}/metrics`, { method: 'POST' });
  t.equal(post.status, 405);
});

t.test('the server stops its REST listener with stop()', async (t) => {
  const other = new ServingServer();
  other.log = () => {};
  await other.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add' }));
  const rest = await other.startRestfulServer('127.0.0.1:0');
  t.equal((await fetch(`http://127.0.0.1:${rest.port}/healthz`)).status, 200);
  await other.stop();
  await t.rejects(fetch(`http://127.0.0.1:${rest.port}/healthz`), 'the port is closed');
});
