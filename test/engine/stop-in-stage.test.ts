// Stopping while requests are inside TypeScript stage functions: every such request is answered
// E_STOPPED, and the process stays up (issue 18, bug 1: piscina's pool was destroyed mid-task).
import t, { type Test } from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { addModel } from '../../dist/servables/example-models.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('stop-in-stage');
fx.config(
  'held',
  `import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
/** Waits x[0] ms without blocking its thread. */
export async function sleepy(x: Tensor): Promise<Tensor> {
  await new Promise((r) => setTimeout(r, (x.data as Float32Array)[0]));
  return x;
}
/** Blocks its thread for x[0] ms (a synchronous stage function: only ending the thread cuts it). */
export function busy(x: Tensor): Tensor {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, (x.data as Float32Array)[0]);
  return x;
}
register.method('sleepy', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [register.addStage(sleepy, [x1]), x2]));
register.method('busy', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [register.addStage(busy, [x1]), x2]));`,
);
fx.model('held', 1, 'add.onnx', addModel({ batch: 'N' }));
t.teardown(() => fx.remove());

async function start(): Promise<ServingServer> {
  const engine = new ServingServer();
  engine.log = () => {};
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'held', numParallelWorkers: 2 }));
  return engine;
}

/** One request whose stage holds it for `ms`; resolves with its outcome (outputs or the error). */
function held(engine: ServingServer, method: string, ms: number): Promise<unknown> {
  const x = f32([ms, ms, ms, ms]);
  return engine.inferEach('held', method, [{ x1: x, x2: f32([1, 1, 1, 1]) }]).then(
    (outcomes) => outcomes[0],
    (err: unknown) => err,
  );
}

/** Lets the requests reach their stage functions on the stage threads. */
const settle = () => new Promise((r) => setTimeout(r, 300));

/** Every outcome an E_STOPPED error, none a stage failure or an answer. */
function allStopped(t: Test, outcomes: unknown[]): void {
  t.equal(outcomes.length, 8, 'every request was answered');
  for (const o of outcomes) {
    t.ok(o instanceof ServingError, 'an explicit error');
    t.equal((o as ServingError).code, 'E_STOPPED', (o as Error).message);
  }
}

/** The process is still up a while after the stop (piscina's late events have fired by then). */
async function stillUp(t: Test): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  t.pass('the process is still up');
}

for (const method of ['sleepy', 'busy']) {
  t.test(`stop() with requests inside '${method}' answers each E_STOPPED`, async (t) => {
    const engine = await start();
    const requests = Array.from({ length: 8 }, () => held(engine, method, 5_000));
    await settle();
    await engine.stop();
    allStopped(t, await Promise.all(requests));
    await stillUp(t);
  });

  t.test(`drain(0) with requests inside '${method}' answers each E_STOPPED`, async (t) => {
    const engine = await start();
    const requests = Array.from({ length: 8 }, () => held(engine, method, 5_000));
    await settle();
    t.equal(await engine.drain(0), 8, 'all eight were cut off');
    allStopped(t, await Promise.all(requests));
    await stillUp(t);
  });

  t.test(`a 1 ms drain cuts requests inside '${method}' off with E_STOPPED`, async (t) => {
    const engine = await start();
    const requests = Array.from({ length: 8 }, () => held(engine, method, 5_000));
    await settle();
    t.equal(await engine.drain(1), 8, 'all eight were cut off');
    allStopped(t, await Promise.all(requests));
    await stillUp(t);
  });
}
