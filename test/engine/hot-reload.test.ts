// Version hot reload: a new version folder is loaded under load with zero failed requests.
import { rmSync } from 'node:fs';
import path from 'node:path';
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

t.test('the serving version folder is removed: the newest remaining version serves; the last one keeps serving, said once', async (t) => {
  const removal = servableFixture('reload-removed');
  t.teardown(() => removal.remove());
  removal.config(
    'calc',
    `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'calc.onnx' });
register.method('run', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`,
  );
  removal.model('calc', 1, 'calc.onnx', addModel({ batch: 'N' }));
  removal.model('calc', 2, 'calc.onnx', subModel({ batch: 'N' }));
  const engine = new ServingServer();
  const logs: string[] = [];
  engine.log = (l) => logs.push(l);
  t.teardown(() => engine.stop());
  await engine.startServables(new ServableStartConfig({ servableDirectory: removal.dir, servableName: 'calc' }));
  const input = [{ x1: f32([5, 5, 5, 5]), x2: f32([1, 2, 3, 4]) }];
  const y = async () => [...((await engine.infer('calc', 'run', input))[0]!.y!.data as Float32Array)];
  t.same(await y(), [4, 3, 2, 1], 'version 2 serves (5-x)');

  rmSync(path.join(removal.dir, 'calc', '2'), { recursive: true });
  t.same(await engine.reload(), [{ servable: 'calc', from: 2, to: 1 }], 'falls back to version 1');
  t.same(await y(), [6, 7, 8, 9], 'version 1 serves (5+x)');
  t.same(engine.describe()[0]!.versions, [1], 'version 2 unloaded');
  t.ok(logs.some((l) => /the folder of version 2 was removed; version 1 serves; unloading version 2/.test(l)), 'the fallback is logged');

  rmSync(path.join(removal.dir, 'calc', '1'), { recursive: true });
  t.same(await engine.reload(), [], 'nothing to fall back to');
  t.same(await engine.reload(), [], 'still nothing');
  t.same(await y(), [6, 7, 8, 9], 'version 1 keeps serving from memory');
  t.equal(logs.filter((l) => /the folder of version 1 was removed and no numbered version folder remains; version 1 keeps serving from memory/.test(l)).length, 1, 'said once');

  removal.model('calc', 3, 'calc.onnx', subModel({ batch: 'N' }));
  t.same(await engine.reload(), [{ servable: 'calc', from: 1, to: 3 }], 'a new folder is picked up again');
  t.same(await y(), [4, 3, 2, 1], 'version 3 serves');
});
