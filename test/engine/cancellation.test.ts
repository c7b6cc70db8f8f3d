// Cancellation: the light CancelSignal the transports hand to the engine.
import t from 'tap';
import { Cancellation } from '../../dist/engine/cancellation.js';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { addModel } from '../../dist/servables/example-models.js';
import { ADD_CONFIG, f32, servableFixture } from '../helpers/fixtures.js';

t.test('listeners run once, in order; removed ones and late ones do not run', async (t) => {
  const c = new Cancellation();
  const calls: string[] = [];
  const a = (): void => void calls.push('a');
  const b = (): void => void calls.push('b');
  const gone = (): void => void calls.push('gone');
  c.addEventListener('abort', a);
  c.addEventListener('abort', gone);
  c.addEventListener('abort', b);
  c.removeEventListener('abort', gone);
  t.equal(c.aborted, false);
  c.cancel();
  c.cancel();
  t.equal(c.aborted, true);
  t.same(calls, ['a', 'b']);
  c.addEventListener('abort', () => calls.push('late'));
  t.same(calls, ['a', 'b'], 'a listener added after the abort never runs (check `aborted` first)');
});

const fx = servableFixture('cancellation');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));

t.test('the engine takes a Cancellation as its signal', async (t) => {
  const engine = new ServingServer();
  engine.log = () => {};
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add' }));
  t.teardown(async () => {
    await engine.stop();
    fx.remove();
  });
  const slow = { x1: f32([1000, 2, 3, 4]), x2: f32([1, 1, 1, 1]) }; // its stage takes x1[0] ms
  const c = new Cancellation();
  const pending = engine.infer('add', 'slow', [slow], { signal: c });
  await new Promise((r) => setTimeout(r, 100));
  const t0 = performance.now();
  c.cancel();
  await t.rejects(pending, { code: 'E_CANCELLED' });
  t.ok(performance.now() - t0 < 500, 'rejected when cancelled, not when the stage finished');
  t.equal(engine.runtime('add').stats.inflight, 0);
  const done = new Cancellation();
  done.cancel();
  await t.rejects(engine.infer('add', 'slow', [slow], { signal: done }), { code: 'E_CANCELLED' }, 'an already-cancelled signal');
  const [out] = await engine.infer('add', 'slow', [{ x1: f32([5, 2, 3, 4]), x2: f32([1, 1, 1, 1]) }], { signal: new Cancellation() });
  t.same([...(out!.y!.data as Float32Array)], [6, 3, 4, 5], 'a signal that is never cancelled changes nothing');
});
