// A device actor that dies mid-load is replaced, and its in-flight requests are answered.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { addModel, mlpModel } from '../../dist/servables/example-models.js';
import { servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('fault');
const WIDTH = 256;
fx.config(
  'mlp',
  `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'mlp.onnx', maxBatchSize: 64 });
register.method('predict', { outputs: ['y'] }, (x) => register.addStage(model, [x]));`,
);
fx.model('mlp', 1, 'mlp.onnx', mlpModel({ layers: 16, width: WIDTH, seed: 7, batch: 'N' }));
fx.config(
  'broken',
  `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'broken.onnx' });
register.method('run', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`,
);
fx.model('broken', 1, 'broken.onnx', Buffer.from('this is not an onnx model'));
fx.config(
  'fine',
  `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
register.method('run', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`,
);
fx.model('fine', 1, 'add.onnx', addModel({ batch: 'N' }));
t.teardown(() => fx.remove());

function row(k: number) {
  const data = new Float32Array(WIDTH).map((_, i) => Math.sin(k + i));
  return { x: { dtype: 'float32' as const, shape: [WIDTH], data } };
}

t.test('killing a device actor under load: every request is answered, the actor comes back', async (t) => {
  const engine = new ServingServer();
  const logs: string[] = [];
  engine.log = (line) => logs.push(line);
  t.teardown(() => engine.stop());
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'mlp', deviceIds: [0, 1] }));
  const rt = engine.runtime('mlp');
  const reference = (await engine.infer('mlp', 'predict', [row(0)]))[0]!.y!.data as Float32Array;

  const requests = Array.from({ length: 60 }, (_, r) => engine.inferEach('mlp', 'predict', Array.from({ length: 16 }, (_, i) => row(r * 16 + i))));
  // Kill device 0 once batches are running on it.
  await new Promise((r) => setTimeout(r, 5));
  const victim = rt.deviceHandles().find((h) => h.deviceId === 0)!;
  t.ok(victim.outstanding > 0 || rt.stats.batches > 0, 'load was running when the actor was killed');
  await victim.kill();
  const results = await Promise.all(requests);

  let ok = 0;
  let failed = 0;
  for (const outcome of results.flat()) {
    if (outcome instanceof ServingError) {
      failed++;
      t.equal(outcome.code, 'E_ACTOR_DIED', 'a failure is an explicit actor-death error');
    } else {
      ok++;
      t.equal((outcome.y!.data as Float32Array).length, WIDTH);
    }
  }
  t.equal(ok + failed, 60 * 16, 'every instance got an answer');
  t.ok(ok > 0, `${ok} answered, ${failed} failed explicitly`);
  t.ok(logs.some((l) => /device actor 0 died/.test(l)), 'the death was logged');

  // The actor is restarted and both copies serve again.
  const deadline = Date.now() + 10_000;
  while (rt.stats.restarts < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(rt.stats.restarts, 1, 'device actor 0 restarted');
  t.equal(rt.stats.liveActors, 2);
  const before = rt.stats.batchesByDevice.get(0) ?? 0;
  await Promise.all(Array.from({ length: 100 }, (_, r) => engine.infer('mlp', 'predict', [row(r)])));
  t.ok((rt.stats.batchesByDevice.get(0) ?? 0) > before, 'the restarted actor takes batches');
  const again = (await engine.infer('mlp', 'predict', [row(0)]))[0]!.y!.data as Float32Array;
  t.same([...again], [...reference], 'same answer as before the crash');
});

t.test('in-flight batches of a killed actor are retried on the other copy', async (t) => {
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'mlp', deviceIds: [0, 1] }));
  const rt = engine.runtime('mlp');
  const pending = engine.inferEach('mlp', 'predict', Array.from({ length: 64 * 8 }, (_, i) => row(i)));
  await new Promise((r) => setImmediate(r));
  const busy = rt.deviceHandles().find((h) => h.outstanding > 0)!;
  t.ok(busy, 'an actor has batches in flight');
  await busy.kill();
  const out = await pending;
  t.equal(out.filter((o) => !(o instanceof ServingError)).length, out.length, 'all instances answered through retries');
  t.ok(rt.stats.retried > 0, `${rt.stats.retried} tasks retried`);
});

t.test('with every copy dead and none able to restart, requests fail with E_UNAVAILABLE, never hang', async (t) => {
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'mlp', deviceIds: [0] }));
  const rt = engine.runtime('mlp');
  await rt.deviceHandles()[0]!.kill();
  // While the actor restarts, requests wait (within their deadline) and then succeed.
  const [o] = await engine.infer('mlp', 'predict', [row(1)], { deadlineMs: 10_000 });
  t.equal((o!.y!.data as Float32Array).length, WIDTH, 'served once the actor came back');
});

t.test('a model that cannot load fails its servable with the file named; others keep serving', async (t) => {
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'fine' }));
  await t.rejects(
    engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'broken', deviceIds: [0, 1] })),
    { code: 'E_LOAD_FAILED', message: /servable 'broken' version 1: .*broken\.onnx/ },
  );
  const [o] = await engine.infer('fine', 'run', [{ x1: { dtype: 'float32', shape: [2, 2], data: new Float32Array(4).fill(1) }, x2: { dtype: 'float32', shape: [2, 2], data: new Float32Array(4).fill(2) } }]);
  t.same([...(o!.y!.data as Float32Array)], [3, 3, 3, 3]);
  t.same(engine.describe().map((s) => s.name), ['fine']);
});
