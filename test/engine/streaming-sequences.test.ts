// A stream stage that drives a stateful model step by step (model.call with a sequence, as a
// generation loop does): its outputs follow the model's reference, and the sequence it starts
// and never ends is ended when its generator finishes, fails or is stopped (no state left live).
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import type { StreamEvent } from '../../dist/engine/inference.js';
import { rnnModel, rnnReference } from '../../dist/servables/example-models.js';
import { servableFixture } from '../helpers/fixtures.js';
import { sequenceInputs } from '../helpers/sequences.js';

const fx = servableFixture('streaming-sequences');
fx.config(
  'gen',
  `import { register, type StreamContext, type Tensor } from 'actorserve';
const model = register.declareModel({
  modelFile: 'rnn.onnx',
  sequence: { state: [{ input: 'h', output: 'h_next', batchAxis: 1 }, { input: 'count', output: 'count_next' }] },
});
let next = 0;
/** xs [steps, 4]: one rnn step per row, yielding y; the sequence is started and never ended here. */
export async function* run(xs: Tensor, ctx: StreamContext) {
  const id = 'gen-' + next++;
  const data = xs.data as Float32Array;
  for (let k = 0; k < xs.shape[0]!; k++) {
    if (ctx.parameters.delayMs) await new Promise((r) => setTimeout(r, Number(ctx.parameters.delayMs)));
    const x: Tensor = { dtype: 'float32', shape: [4], data: data.slice(4 * k, 4 * k + 4) };
    const [y] = await model.call([x], { sequence: { id, start: k === 0 } });
    yield y!;
    if (ctx.parameters.failAt === k) throw new Error('failing at step ' + k);
  }
}
register.method('run', { outputs: ['y'] }, (xs) => register.addStage(run, [xs], { stream: true }));
`,
);
fx.model('gen', 1, 'rnn.onnx', rnnModel({ batch: 'N' }));
t.teardown(() => fx.remove());

const engine = new ServingServer();
engine.log = () => {};
t.before(() => engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'gen', numParallelWorkers: 1, deviceIds: [0], intraOpThreads: 1 })));
t.teardown(() => engine.stop());

function xsOf(seed: number, steps: number) {
  const rows = sequenceInputs(seed, steps);
  const data = new Float32Array(steps * 4);
  rows.forEach((r, k) => data.set(r, 4 * k));
  return { rows, tensor: { xs: { dtype: 'float32' as const, shape: [steps, 4], data } } };
}

const live = (): number => engine.runtime('gen').stats.liveSequences;

/** Polls until no sequence is live (bounded: 100 polls, 20 ms apart). */
async function noneLive(): Promise<number> {
  for (let i = 0; i < 100 && live() > 0; i++) await new Promise((r) => setTimeout(r, 20));
  return live();
}

t.test('streams side by side follow the reference, and their sequences end with them', async (t) => {
  const a = xsOf(1, 6);
  const b = xsOf(2, 4);
  const events: StreamEvent[] = [];
  for await (const e of engine.inferStream('gen', 'run', [a.tensor, b.tensor])) events.push(e);
  for (const [index, { rows }] of [a, b].entries()) {
    const got = events.filter((e) => e.index === index).map((e) => ('outputs' in e ? [...(e.outputs.y!.data as Float32Array)] : e.error.message));
    const want = rnnReference(rows).map((w) => [...w.y]);
    t.equal(got.length, want.length, `instance ${index}: one event per step`);
    const worst = Math.max(...want.flatMap((w, k) => w.map((v, j) => Math.abs(v - ((got[k] as number[] | undefined)?.[j] ?? Infinity)))));
    t.ok(worst < 1e-5, `instance ${index}: every y within 1e-5 of the reference (worst ${worst})`);
  }
  t.equal(await noneLive(), 0, 'no sequence left live');
});

t.test('a generator that fails midway leaves no sequence live', async (t) => {
  const events: StreamEvent[] = [];
  for await (const e of engine.inferStream('gen', 'run', [xsOf(3, 6).tensor], { parameters: { failAt: 2 } })) events.push(e);
  t.equal(events.length, 4, 'three steps, then the error');
  t.ok('error' in events[3]!, 'the last event is the error');
  t.equal(await noneLive(), 0);
});

t.test('a stream the reader leaves early leaves no sequence live', async (t) => {
  let seen = 0;
  for await (const e of engine.inferStream('gen', 'run', [xsOf(4, 50).tensor], { parameters: { delayMs: 5 } })) {
    t.ok('outputs' in e);
    if (++seen === 2) {
      t.equal(live(), 1, 'its sequence is live while it streams');
      break;
    }
  }
  t.equal(await noneLive(), 0, 'ended once the generator was stopped');
});

t.test('a unary call of the stream leaves no sequence live either', async (t) => {
  const [out] = await engine.infer('gen', 'run', [xsOf(5, 3).tensor]);
  t.same(out!.y!.shape, [24], 'the three y [8] joined along axis 0');
  t.equal(await noneLive(), 0);
});
