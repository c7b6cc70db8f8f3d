// Version hot reload: a new version folder is loaded under load with zero failed requests.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { addModel, subModel } from '../../dist/servables/example-models.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('reload');
fx.config(
  'calc',
  `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'calc.onnx' });
register.method('run', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`,
);
fx.model('calc', 1, 'calc.onnx', addModel({ batch: 'N' }));
t.teardown(() => fx.remove());

t.test('version 2 appears under load: zero failed requests, then v2 serves and v1 is unloaded', async (t) => {
  const engine = new ServingServer();
  const logs: string[] = [];
  engine.log = (l) => logs.push(l);
  t.teardown(() => engine.stop());
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'calc', deviceIds: [0, 1] }));
  const input = [{ x1: f32([5, 5, 5, 5]), x2: f32([1, 2, 3, 4]) }];

  let stop = false;
  let failures = 0;
  let done = 0;
  const seen = new Set<string>();
  const loops = Array.from({ length: 16 }, async () => {
    while (!stop) {
      const [o] = await engine.inferEach('calc', 'run', input).catch((e: unknown) => [e]);
      if (o instanceof ServingError || o instanceof Error) failures++;
      else seen.add(String((o as { y: { data: Float32Array } }).y.data[0]));
      done++;
    }
  });
  await new Promise((r) => setTimeout(r, 200));
  t.same(await engine.reload(), [], 'nothing new yet');
  fx.model('calc', 2, 'calc.onnx', subModel({ batch: 'N' }));
  t.same(await engine.reload(), [{ servable: 'calc', from: 1, to: 2 }]);
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await Promise.all(loops);

  t.equal(failures, 0, `no failed request out of ${done}`);
  t.same([...seen].sort(), ['4', '6'], 'answers from v1 (5+1) and then v2 (5-1)');
  t.same(engine.describe()[0]!.versions, [2], 'version 1 unloaded');
  const [o] = await engine.infer('calc', 'run', input);
  t.same([...(o!.y!.data as Float32Array)], [4, 3, 2, 1]);
  t.ok(logs.some((l) => /version 2 serves; unloading version 1/.test(l)));
});
