// KServe v2 readiness of a model that cannot serve, in a state the server really gets into:
// the servable `flaky`'s only device actor dies and its restarts fail (its model file is gone),
// so it has no live device actor. REST answers 503 {"error"} on /v2/models/flaky/ready and
// /v2/health/ready (live stays 200); gRPC ModelReady and ServerReady say false. A servable
// beside it stays ready. (Inference requests to it wait while a restart is pending and fail
// with 503 / UNAVAILABLE once the restarts are given up: not waited for here, it takes seconds.)
import { renameSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { addModel } from '../../dist/servables/example-models.js';
import { startRestfulServer } from '../../dist/transports/rest/server.js';
import { startGrpcServer } from '../../dist/transports/grpc/server.js';
import { ADD_CONFIG, servableFixture } from '../helpers/fixtures.js';
import { request } from './rest/fixtures/rest.js';
import { OipClient } from './grpc/fixtures/oip-client.js';

const fx = servableFixture('kserve-ready');
for (const name of ['flaky', 'steady']) {
  fx.config(name, ADD_CONFIG);
  fx.model(name, 1, 'add.onnx', addModel({ batch: 'N' }));
}
t.teardown(() => fx.remove());

/** Polls `check` every 20 ms for at most `ms`; false when it never held. */
async function until(check: () => boolean, ms = 8_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

t.test('a servable whose device actor died and cannot be restarted is not ready', async (t) => {
  const engine = new ServingServer();
  const logs: string[] = [];
  engine.log = (line) => logs.push(line);
  t.teardown(() => engine.stop());
  await engine.startServables(['flaky', 'steady'].map((servableName) => new ServableStartConfig({ servableDirectory: fx.dir, servableName, deviceIds: [0] })));
  const rest = await startRestfulServer(engine, '127.0.0.1:0');
  engine.attachListener(rest);
  const grpc = await startGrpcServer(engine, '127.0.0.1:0');
  t.teardown(() => grpc.close());
  const oip = new OipClient(grpc.address);
  t.teardown(() => oip.close());
  const get = (p: string) => request({ port: rest.port }, p);

  t.same([(await get('/v2/models/flaky/ready')).status, (await oip.ok('ModelReady', { name: 'flaky' }))['ready']], [200, true], 'ready while its actor is live');

  const model = path.join(fx.dir, 'flaky', '1', 'add.onnx');
  renameSync(model, `${model}.away`);
  const rt = engine.runtime('flaky');
  await rt.deviceHandles()[0]!.kill();
  t.ok(await until(() => logs.some((l) => /flaky.*restarting device actor 0 failed/.test(l))), 'the restart failed: the model file is gone');
  t.equal(rt.stats.liveActors, 0, 'no live device actor');

  for (const p of ['/v2/models/flaky/ready', '/v2/models/flaky/versions/1/ready', '/v2/models/flaky.add_common/ready']) {
    const r = await get(p);
    t.equal(r.status, 503, `${p}: 503`);
    t.match(r.json, { error: /is not ready \(no live device actor\)/ }, `${p}: {"error"}`);
  }
  const server = await get('/v2/health/ready');
  t.equal(server.status, 503, '/v2/health/ready: 503 while one loaded servable cannot serve');
  t.match(server.json, { error: 'not ready: flaky version 1 has no live device actor' });
  t.same([(await get('/v2/health/live')).status, (await get('/v2/models/steady/ready')).status], [200, 200], 'live, and the other servable is ready');
  t.equal((await get('/v2/models/nothing/ready')).status, 404, 'an unknown model is 404, not 503');

  t.same((await oip.ok('ModelReady', { name: 'flaky' }))['ready'], false, 'gRPC ModelReady: false');
  t.same((await oip.ok('ModelReady', { name: 'flaky', version: '1' }))['ready'], false, 'gRPC ModelReady at version 1: false');
  t.same((await oip.ok('ModelReady', { name: 'steady' }))['ready'], true, 'gRPC ModelReady of the other servable: true');
  t.same((await oip.ok('ServerReady'))['ready'], false, 'gRPC ServerReady: false');
  t.same((await oip.ok('ServerLive'))['live'], true, 'gRPC ServerLive: true');
});
