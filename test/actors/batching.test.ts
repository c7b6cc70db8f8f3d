// Request splitting, dynamic batching, padding of fixed-batch models, least-outstanding routing.
import t, { type Test } from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { addModel } from '../../dist/servables/example-models.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('batching');
const ADD_CONFIG = (opts: string) => `
import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx', modelFormat: 'onnx', withBatchDim: true${opts} });
register.method('add_common', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));
`;
fx.config('fixed2', ADD_CONFIG(''));
fx.model('fixed2', 1, 'add.onnx', addModel({ batch: 2 }));
fx.config('dyn2', ADD_CONFIG(', maxBatchSize: 2'));
fx.model('dyn2', 1, 'add.onnx', addModel({ batch: 'N' }));
fx.config('dyn', ADD_CONFIG(', maxBatchSize: 8'));
fx.model('dyn', 1, 'add.onnx', addModel({ batch: 'N' }));
fx.config('delayed', ADD_CONFIG(', maxBatchSize: 64, maxQueueDelayMs: 30'));
fx.model('delayed', 1, 'add.onnx', addModel({ batch: 'N' }));

const engine = new ServingServer();
engine.log = () => {};
t.before(() =>
  engine.startServables([
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'fixed2' }),
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'dyn2' }),
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'dyn', deviceIds: [0, 1] }),
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'delayed' }),
  ]),
);
t.teardown(async () => {
  await engine.stop();
  fx.remove();
});

const instance = (k: number) => ({ x1: f32([k, k + 1, k + 2, k + 3]), x2: f32([100, 100, 100, 100]) });
const expectY = (t: Test, y: unknown, k: number) =>
  t.same([...((y as { data: Float32Array }).data)], [k + 100, k + 101, k + 102, k + 103], `instance ${k}`);

t.test('3 instances with a fixed model batch of 2 become 2 batches; the padding is dropped', async (t) => {
  const out = await engine.infer('fixed2', 'add_common', [instance(0), instance(10), instance(20)]);
  t.equal(out.length, 3, 'three results, no padded extra');
  out.forEach((o, i) => expectY(t, o.y, i * 10));
  t.same(o2s(o(engine).batchSizes), { 2: 1, 1: 1 }, 'one full batch and one padded batch of one');
  t.equal(o(engine).batches, 2);
  function o(e: ServingServer) {
    return e.runtime('fixed2').stats;
  }
});

t.test('a dynamic batch dim with maxBatchSize 2 splits 3 instances into 2 batches', async (t) => {
  const out = await engine.infer('dyn2', 'add_common', [instance(1), instance(2), instance(3)]);
  out.forEach((o, i) => expectY(t, o.y, i + 1));
  t.same(o2s(engine.runtime('dyn2').stats.batchSizes), { 2: 1, 1: 1 });
});

t.test('instances of concurrent requests share batches and come back to their own request', async (t) => {
  const requests = Array.from({ length: 50 }, (_, r) =>
    engine.infer('dyn', 'add_common', Array.from({ length: (r % 3) + 1 }, (_, i) => instance(r * 10 + i))),
  );
  const results = await Promise.all(requests);
  results.forEach((out, r) => {
    t.equal(out.length, (r % 3) + 1);
    out.forEach((o, i) => expectY(t, o.y, r * 10 + i));
  });
  const stats = engine.runtime('dyn').stats;
  const total = results.reduce((n, out) => n + out.length, 0);
  t.equal(stats.instances, total, 'every instance ran exactly once');
  t.ok(stats.batches < total, `fewer batches (${stats.batches}) than instances: requests were combined`);
  t.ok(Math.max(...stats.batchSizes.keys()) <= 8, 'no batch above maxBatchSize');
});

t.test('with two device copies both are used under concurrent load', async (t) => {
  const before = new Map(engine.runtime('dyn').stats.batchesByDevice);
  await Promise.all(Array.from({ length: 200 }, (_, r) => engine.infer('dyn', 'add_common', [instance(r)])));
  const after = engine.runtime('dyn').stats.batchesByDevice;
  for (const id of [0, 1]) t.ok((after.get(id) ?? 0) > (before.get(id) ?? 0), `device ${id} ran batches`);
});

t.test('maxQueueDelayMs lets a partial batch wait for more instances', async (t) => {
  const out = await Promise.all(Array.from({ length: 5 }, (_, r) => engine.infer('delayed', 'add_common', [instance(r)])));
  out.forEach((o, r) => expectY(t, o[0]!.y, r));
  t.same(o2s(engine.runtime('delayed').stats.batchSizes), { 5: 1 }, 'five single-instance requests ran as one batch');
});

function o2s(m: Map<number, number>): Record<number, number> {
  return Object.fromEntries(m);
}

t.test('an operator batching override replaces the declared batch size; unknown models are refused', async (t) => {
  const other = new ServingServer();
  other.log = () => {};
  t.teardown(() => other.stop());
  await other.startServables(
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'dyn', batching: { 'add.onnx': { maxBatchSize: 1 } } }),
  );
  await other.infer('dyn', 'add_common', [instance(1), instance(2), instance(3)]);
  t.same(o2s(other.runtime('dyn').stats.batchSizes), { 1: 3 }, 'three batches of one');
  await t.rejects(
    other.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'dyn2', batching: { 'nope.onnx': { maxBatchSize: 1 } } })),
    { code: 'E_CONFIG_INVALID', message: /no such model \(models: add.onnx\)/ },
  );
  t.throws(() => new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'dyn', batching: { 'add.onnx': { maxBatchSise: 1 } as never } }), /unknown key 'maxBatchSise'/);
});
