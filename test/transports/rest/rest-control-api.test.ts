// The repository index and the load/unload control API on a real REST server: off by
// default; with controlApi on, the index lists available vs loaded servables and load/unload
// map onto the facade's loadServable/unloadServable.
import t from 'tap';
import { ServingServer } from '../../../dist/server.js';
import { ServableStartConfig } from '../../../dist/engine/start-config.js';
import { addModel, subModel } from '../../../dist/servables/example-models.js';
import { ADD_CONFIG, servableFixture } from '../../helpers/fixtures.js';

const fx = servableFixture('rest-control');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
fx.model('add', 2, 'add.onnx', subModel({ batch: 'N' }));
fx.config('echo', `import { register } from 'actorserve';\nregister.method('echo', { outputs: ['y'] }, (x) => x);\n`);
const engine = new ServingServer();
engine.log = () => {};
let base = '';
let plain = '';
t.before(async () => {
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add' }));
  base = `http://127.0.0.1:${(await engine.startRestfulServer('127.0.0.1:0', { controlApi: true })).port}`;
  plain = `http://127.0.0.1:${(await engine.startRestfulServer('127.0.0.1:0')).port}`;
});
t.teardown(async () => {
  await engine.stop();
  fx.remove();
});

const post = (path: string, body?: string) => fetch(`${base}${path}`, { method: 'POST', ...(body !== undefined ? { body } : {}) });
const echo = () => fetch(`${base}/model/echo:echo`, { method: 'POST', body: JSON.stringify({ instances: [{ x: [1, 2] }] }) });

t.test('off by default: the control routes are not served', async (t) => {
  t.equal((await fetch(`${plain}/repository/index`)).status, 404);
  t.equal((await fetch(`${plain}/repository/servables/echo/load`, { method: 'POST' })).status, 404);
});

t.test('the index lists the servables of the directory, with available and loaded versions', async (t) => {
  const r = await fetch(`${base}/repository/index`);
  t.equal(r.status, 200);
  t.same(await r.json(), [
    { name: 'add', directory: fx.dir, available: [1, 2], loaded: [2] },
    { name: 'echo', directory: fx.dir, available: [], loaded: [] },
  ]);
});

t.test('load starts a servable of the directory; unload stops it', async (t) => {
  t.equal((await echo()).status, 404, 'echo is not loaded yet');
  const loaded = await post('/repository/servables/echo/load');
  t.equal(loaded.status, 200);
  t.same(await loaded.json(), { name: 'echo', loaded: [1] }, 'a servable without models serves as version 1');
  const served = await echo();
  t.equal(served.status, 200);
  t.same(await served.json(), { instances: [{ y: [1, 2] }] });
  t.match(await (await fetch(`${base}/repository/index`)).json(), [{ name: 'add' }, { name: 'echo', loaded: [1] }]);

  const again = await post('/repository/servables/echo/load');
  t.equal(again.status, 400);
  t.match(await again.json(), { error_msg: /servable 'echo' is already loaded.*unload it first/ });

  const unloaded = await post('/repository/servables/echo/unload');
  t.equal(unloaded.status, 200);
  t.same(await unloaded.json(), { name: 'echo', unloaded: [1] });
  t.equal((await echo()).status, 404, 'echo is gone');
  t.match(await (await fetch(`${base}/repository/index`)).json(), [{ name: 'add' }, { name: 'echo', loaded: [] }]);
});

t.test('a version can be named; unknown servables and bad bodies are refused', async (t) => {
  t.same(await (await post('/repository/servables/add/unload')).json(), { name: 'add', unloaded: [2] });
  const v1 = await post('/repository/servables/add/load', '{"version": 1}');
  t.same(await v1.json(), { name: 'add', loaded: [1] });
  const body = JSON.stringify({ instances: [{ x1: [[1, 1], [1, 1]], x2: [[1, 1], [1, 1]] }] });
  t.same(await (await fetch(`${base}/model/add:add_common`, { method: 'POST', body })).json(), { instances: [{ y: [[2, 2], [2, 2]] }] }, 'version 1 adds');

  const unknown = await post('/repository/servables/nope/load');
  t.equal(unknown.status, 404);
  t.match(await unknown.json(), { error_msg: /no servable 'nope' in the servable directory \(available: add, echo\)/ });
  const notLoaded = await post('/repository/servables/echo/unload');
  t.equal(notLoaded.status, 404);
  t.match(await notLoaded.json(), { error_msg: /servable 'echo' is not loaded/ });
  const bad = await post('/repository/servables/echo/load', '{"versoin": 1}');
  t.equal(bad.status, 400);
  t.match(await bad.json(), { error_msg: /takes only "version", got "versoin"/ });
  t.equal((await fetch(`${base}/repository/servables/echo/load`)).status, 405, 'load is a POST');
});

t.test('unload lets requests in flight finish, then refuses new ones', async (t) => {
  // x1[0] = 300.5: the 'slow' method's stage sleeps that many ms before the add (fractions keep
  // the JSON numbers float32: the stage takes what JSON gives it)
  const body = JSON.stringify({ instances: [{ x1: [[300.5, 1.5], [1.5, 1.5]], x2: [[1.5, 1.5], [1.5, 1.5]] }] });
  const inflight = fetch(`${base}/model/add:slow`, { method: 'POST', body });
  await new Promise((r) => setTimeout(r, 100));
  const unloading = post('/repository/servables/add/unload');
  const answered = await inflight;
  const got: unknown = await answered.clone().json();
  t.equal(answered.status, 200, `the request in flight is answered: ${JSON.stringify(got)}`);
  t.same(got, { instances: [{ y: [[302, 3], [3, 3]] }] });
  t.same(await (await unloading).json(), { name: 'add', unloaded: [1] });
  t.equal((await fetch(`${base}/model/add:slow`, { method: 'POST', body })).status, 404, 'then add is gone');
});
