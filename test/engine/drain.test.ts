// Graceful drain: new requests refused, admitted ones finish, what cannot finish gets an explicit error.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { addModel } from '../../dist/servables/example-models.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('drain');
fx.config(
  'slow',
  `import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
export async function sleepy(x: Tensor): Promise<Tensor> {
  await new Promise((r) => setTimeout(r, (x.data as Float32Array)[0]));
  return x;
}
register.method('run', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [register.addStage(sleepy, [x1]), x2]));`,
);
fx.model('slow', 1, 'add.onnx', addModel({ batch: 'N' }));
t.teardown(() => fx.remove());

async function start() {
  const engine = new ServingServer();
  engine.log = () => {};
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'slow', numParallelWorkers: 4 }));
  return engine;
}
const request = (engine: ServingServer, ms: number) => engine.inferEach('slow', 'run', [{ x1: f32([ms, ms, ms, ms]), x2: f32([1, 1, 1, 1]) }]);

t.test('drain lets admitted requests finish and refuses new ones', async (t) => {
  const engine = await start();
  const admitted = Array.from({ length: 8 }, () => request(engine, 150));
  const drained = engine.drain(10_000);
  await t.rejects(request(engine, 1), { code: 'E_STOPPED', message: /draining/ });
  const results = await Promise.all(admitted);
  t.equal(results.flat().filter((o) => !(o instanceof ServingError)).length, 8, 'all 8 admitted requests answered with outputs');
  t.equal(await drained, 0, 'nothing had to be cut off');
  await t.rejects(engine.infer('slow', 'run', [{ x1: f32([1, 1, 1, 1]), x2: f32([1, 1, 1, 1]) }]), { code: 'E_STOPPED' }, 'still refused after the drain');
});

t.test('work that outlives the drain timeout gets an explicit error, never silence', async (t) => {
  const engine = await start();
  const admitted = Array.from({ length: 4 }, () => request(engine, 1500).catch((e: unknown) => [e]));
  await new Promise((r) => setTimeout(r, 50));
  const cut = await engine.drain(100);
  t.equal(cut, 4, 'four requests were still running at the timeout');
  const results = (await Promise.all(admitted)).flat();
  t.equal(results.length, 4, 'each got an answer');
  for (const r of results) {
    t.ok(r instanceof ServingError, 'an explicit error');
    t.equal((r as ServingError).code, 'E_STOPPED', (r as Error).message);
  }
});
