// Version folders: 0 = newest, explicit versions, missing versions.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { addModel, subModel } from '../../dist/servables/example-models.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('versions');
fx.config(
  'calc',
  `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'calc.onnx' });
register.method('run', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`,
);
fx.model('calc', 1, 'calc.onnx', addModel({ batch: 'N' })); // version 1 adds
fx.model('calc', 2, 'calc.onnx', subModel({ batch: 'N' })); // version 2 subtracts
fx.config('nomodels', `import { register } from 'actorserve';\nregister.method('echo', { outputs: ['x'] }, (x) => x);`);
fx.config(
  'noversions',
  `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'm.onnx' });
register.method('run', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`,
);

const input = [{ x1: f32([5, 5, 5, 5]), x2: f32([1, 2, 3, 4]) }];
const values = (out: { y?: { data: unknown } }[]) => [...(out[0]!.y!.data as Float32Array)];

t.test('version 0 loads the newest version folder', async (t) => {
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'calc' }));
  t.same(engine.describe()[0]!.versions, [2]);
  t.same(values(await engine.infer('calc', 'run', input)), [4, 3, 2, 1], 'version 2 subtracts');
  await t.rejects(engine.infer('calc', 'run', input, { versionNumber: 1 }), { code: 'E_UNKNOWN_VERSION' });
});

t.test('an explicit version loads that folder; several versions serve side by side', async (t) => {
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  await engine.startServables([
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'calc', versionNumber: 1 }),
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'calc', versionNumber: 2 }),
  ]);
  t.same(engine.describe()[0]!.versions, [1, 2]);
  t.same(values(await engine.infer('calc', 'run', input, { versionNumber: 1 })), [6, 7, 8, 9]);
  t.same(values(await engine.infer('calc', 'run', input, { versionNumber: 2 })), [4, 3, 2, 1]);
  t.same(values(await engine.infer('calc', 'run', input)), [4, 3, 2, 1], 'no version = newest loaded');
  await t.rejects(engine.infer('calc', 'run', input, { versionNumber: 3 }), { code: 'E_UNKNOWN_VERSION', message: /no loaded version 3 \(loaded: 1, 2\)/ });
  await t.rejects(engine.infer('calc', 'run', input, { versionNumber: -1 }), { code: 'E_INVALID_ARGUMENT' });
  await t.rejects(
    engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'calc', versionNumber: 2 })),
    { code: 'E_INVALID_ARGUMENT', message: /already started/ },
  );
});

t.test('a missing version folder fails the start with a clear error', async (t) => {
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  await t.rejects(
    engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'calc', versionNumber: 7 })),
    { code: 'E_LOAD_FAILED', message: /version 7 does not exist .*present: 1, 2/ },
  );
  await t.rejects(
    engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'noversions' })),
    { code: 'E_LOAD_FAILED', message: /no numbered version folder/ },
  );
  await t.rejects(
    engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'absent' })),
    { code: 'E_LOAD_FAILED', message: /does not exist/ },
  );
  t.same(engine.describe(), [], 'nothing half-started');
});

t.test('a servable without models runs as version 1 with no version folder', async (t) => {
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'nomodels' }));
  t.same(engine.describe()[0]!.versions, [1]);
  const [o] = await engine.infer('nomodels', 'echo', [{ x: f32([1, 2, 3, 4]) }]);
  t.same([...(o!.x!.data as Float32Array)], [1, 2, 3, 4]);
});

t.test('servable names cannot leave the servable directory', async (t) => {
  for (const name of ['../calc', 'calc/../calc', '..', '.hidden', 'a/b', '']) {
    t.throws(() => new ServableStartConfig({ servableDirectory: fx.dir, servableName: name }), ServingError, JSON.stringify(name));
  }
});

t.teardown(() => fx.remove());
