// `serve --control-api` (config key rest.controlApi) turns on the repository index and the
// load/unload routes; without it they are not served.
import t from 'tap';
import { servableFixture } from '../helpers/fixtures.js';
import { REST_LISTENING, runCli as run } from '../helpers/cli.js';

const fx = servableFixture('serve-control');
fx.config('echo', `import { register } from 'actorserve';\nregister.method('echo', { outputs: ['y'] }, (x) => x);\n`);
fx.config('echo2', `import { register } from 'actorserve';\nregister.method('echo', { outputs: ['y'] }, (x) => x);\n`);
t.teardown(() => fx.remove());

async function serveAndGetIndex(flags: string[]): Promise<{ status: number; body: unknown; port: string }> {
  const p = run(['serve', '--servable-dir', fx.dir, '--servables', 'echo', '--rest-address', '127.0.0.1:0', '--no-grpc', ...flags]);
  const [, port] = await p.waitFor(REST_LISTENING);
  const r = await fetch(`http://127.0.0.1:${port}/repository/index`);
  const result = { status: r.status, body: (await r.json()) as unknown, port: port! };
  if (r.status === 200) {
    const load = await fetch(`http://127.0.0.1:${port}/repository/servables/echo2/load`, { method: 'POST' });
    t.equal(load.status, 200, 'echo2 loads');
    const echo = await fetch(`http://127.0.0.1:${port}/model/echo2:echo`, { method: 'POST', body: '{"instances":[{"x":[1]}]}' });
    t.same(await echo.json(), { instances: [{ y: [1] }] }, 'and serves');
  }
  p.child.kill('SIGTERM');
  t.equal(await p.exited, 0);
  return result;
}

t.test('off by default', async (t) => {
  t.equal((await serveAndGetIndex([])).status, 404);
});

t.test('--control-api serves the index and load/unload', async (t) => {
  const { status, body } = await serveAndGetIndex(['--control-api']);
  t.equal(status, 200);
  t.same(body, [
    { name: 'echo', directory: fx.dir, available: [], loaded: [1] },
    { name: 'echo2', directory: fx.dir, available: [], loaded: [] },
  ]);
});
