// Stateful sequences through the engine API (docs/sequences.md), on the bundled `rnn` example
// (a recurrent cell whose state h has its batch axis at 1) served by two device actors: many
// sequences at once, interleaved and batched together, each gives exactly the outputs of the
// plain-TS reference run alone; every refusal; the idle timeout; metrics; no state left behind.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { addModel, rnnModel } from '../../dist/servables/example-models.js';
import { ServingError } from '../../dist/engine/errors.js';
import { BUNDLED_SERVABLES, servableFixture } from '../helpers/fixtures.js';
import { type StepOutput, checkAgainstReference, sequenceInputs, xTensor } from '../helpers/sequences.js';

const engine = new ServingServer();
engine.log = () => {};
const fixture = servableFixture('sequences');
// The same model with a short idle timeout, on one actor; and a method that misuses it.
fixture.config(
  'rnn_short',
  `import { register } from 'actorserve';
const model = register.declareModel({
  modelFile: 'rnn.onnx',
  sequence: { state: [{ input: 'h', output: 'h_next', batchAxis: 1 }, { input: 'count', output: 'count_next' }], idleTimeoutMs: 300 },
});
register.method('step', { outputs: ['y', 'steps'] }, (x) => register.addStage(model, [x], { outputsCount: 2 }));
`,
);
fixture.model('rnn_short', 1, 'rnn.onnx', rnnModel({ batch: 'N' }));
// A fixed batch of 4: short batches are padded, and padding rows keep no state.
fixture.config('rnn_fixed', `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'rnn.onnx', sequence: { state: [{ input: 'h', output: 'h_next', batchAxis: 1 }, { input: 'count', output: 'count_next' }] } });
register.method('step', { outputs: ['y', 'steps'] }, (x) => register.addStage(model, [x], { outputsCount: 2 }));
`);
fixture.model('rnn_fixed', 1, 'rnn.onnx', rnnModel({ batch: 4 }));
fixture.config(
  'plain',
  `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
register.method('add_common', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));
`,
);
fixture.model('plain', 1, 'add.onnx', addModel({ batch: 'N' }));

t.before(async () => {
  await ensureExampleModels(BUNDLED_SERVABLES);
  await engine.startServables([
    new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES, servableName: 'rnn', deviceIds: [0, 1] }),
    new ServableStartConfig({ servableDirectory: fixture.dir, servableName: 'plain' }),
    new ServableStartConfig({ servableDirectory: fixture.dir, servableName: 'rnn_short' }),
    new ServableStartConfig({ servableDirectory: fixture.dir, servableName: 'rnn_fixed' }),
  ]);
});
t.teardown(async () => {
  await engine.stop();
  fixture.remove();
});

async function step(servable: string, id: string | number, x: Float32Array, flags: { start?: boolean; end?: boolean } = {}): Promise<StepOutput> {
  const [out] = await engine.infer(servable, 'step', [{ x: xTensor(x) }], { sequence: { id, ...flags } });
  if (out!.y!.shape.join() !== '8') throw new Error(`y has shape [${out!.y!.shape.join(', ')}], expected [8]`);
  return { y: out!.y!.data as Float32Array, steps: (out!.steps!.data as Float32Array)[0]! };
}

/** Runs sequence `id` over `xs` one request per step (start on the first, end on the last). */
async function runSequence(servable: string, id: string | number, xs: readonly Float32Array[]): Promise<StepOutput[]> {
  const got: StepOutput[] = [];
  for (let k = 0; k < xs.length; k++) got.push(await step(servable, id, xs[k]!, { start: k === 0, end: k === xs.length - 1 }));
  return got;
}

async function heldStates(servable: string): Promise<number> {
  const stats = await Promise.all(engine.runtime(servable).deviceHandles().map((d) => d.stats()));
  return stats.reduce((n, s) => n + s.sequences, 0);
}

t.test('12 sequences run concurrently, each as if alone, spread over both actors', async (t) => {
  const before = engine.runtime('rnn').stats;
  const xs = Array.from({ length: 12 }, (_, s) => sequenceInputs(s, 6 + (s % 3)));
  const ids = xs.map((_, s) => (s % 2 === 0 ? `seq-${s}` : 100 + s));
  const got = await Promise.all(xs.map((x, s) => runSequence('rnn', ids[s]!, x)));
  got.forEach((g, s) => checkAgainstReference(t, `sequence ${ids[s]}`, xs[s]!, g));
  const after = engine.runtime('rnn').stats;
  t.ok(after.batches - before.batches < after.instances - before.instances, 'steps of different sequences shared batches');
  t.equal(after.batchesByDevice.size, 2, 'both device actors served sequences');
  t.equal(after.liveSequences, 0, 'every sequence ended');
  t.equal(after.sequencesStarted - before.sequencesStarted, 12);
  t.equal(await heldStates('rnn'), 0, 'no state is left in the actors');
});

t.test('steps sent in lockstep share batches; a multi-instance request is consecutive steps', async (t) => {
  const n = 5;
  const xs = Array.from({ length: n }, (_, s) => sequenceInputs(50 + s, 4));
  const got: StepOutput[][] = xs.map(() => []);
  for (let k = 0; k < 4; k++) {
    // every sequence's step k in the same turn: one batch, the state's batch axis 1 stacked
    const outs = await Promise.all(xs.map((x, s) => step('rnn', `lock-${s}`, x[k]!, { start: k === 0 })));
    outs.forEach((o, s) => got[s]!.push(o));
  }
  xs.forEach((x, s) => checkAgainstReference(t, `lockstep ${s}`, x, got[s]!));
  // one request holding steps 4..6 of sequence lock-0, then the end
  const more = sequenceInputs(99, 3);
  const outs = await engine.infer('rnn', 'step', more.map((x) => ({ x: xTensor(x) })), { sequence: { id: 'lock-0', end: true } });
  const all = [...xs[0]!, ...more];
  checkAgainstReference(t, 'lock-0 continued', all, [...got[0]!, ...outs.map((o) => ({ y: o.y!.data as Float32Array, steps: (o.steps!.data as Float32Array)[0]! }))]);
  for (let s = 1; s < n; s++) await step('rnn', `lock-${s}`, xs[s]![0]!, { end: true });
  t.equal(engine.runtime('rnn').stats.liveSequences, 0);
  t.equal(await heldStates('rnn'), 0);
});

t.test('refusals are clear client errors', async (t) => {
  const x = sequenceInputs(7, 2);
  const refused = async (p: Promise<unknown>, pattern: RegExp, what: string) => {
    const err = await p.then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof ServingError, `${what}: refused`);
    t.equal((err as ServingError).code, 'E_INVALID_ARGUMENT', `${what}: E_INVALID_ARGUMENT (400)`);
    t.match((err as ServingError).message, pattern, `${what}: says why`);
  };
  await refused(step('rnn', 'never-started', x[0]!), /sequence "never-started" of model 'rnn.onnx' is not live .*send sequence_start/, 'an unknown id without start');
  await step('rnn', 'twice', x[0]!, { start: true });
  await refused(step('rnn', 'twice', x[1]!, { start: true }), /already live; a second start is refused/, 'a second start of a live id');
  await step('rnn', 'twice', x[1]!, { end: true });
  await refused(step('rnn', 'twice', x[0]!), /is not live/, 'a step after the end');
  await refused(engine.infer('rnn', 'step', [{ x: xTensor(x[0]!) }]), /runs a stateful model: a request must name its sequence/, 'no sequence on a stateful method');
  const f = { dtype: 'float32' as const, shape: [2, 2], data: new Float32Array(4) };
  await refused(engine.infer('plain', 'add_common', [{ x1: f, x2: f }], { sequence: { id: 1, start: true } }), /keeps no state/, 'a sequence on a stateless method');
  await refused(step('rnn', 0, x[0]!, { start: true }), /integer >= 1/, 'id 0 (Triton: no sequence)');
  await refused(step('rnn', '', x[0]!, { start: true }), /must not be empty/, 'an empty id');
  await refused(engine.infer('rnn', 'step', [{ x: xTensor(x[0]!) }], { sequence: { id: 1, begin: true } as never }), /unknown key 'begin'/, 'an unknown sequence key');
  // a refused request leaves nothing live
  t.equal(engine.runtime('rnn').stats.liveSequences, 0);
  // 7 and "7" are two sequences; a restarted id starts from zero (nothing leaks from before)
  await step('rnn', 7, x[0]!, { start: true });
  await step('rnn', 7, x[1]!);
  const fresh = await step('rnn', '7', x[0]!, { start: true, end: true });
  checkAgainstReference(t, 'string id "7" alone', [x[0]!], [fresh]);
  const again = await runSequence('rnn', 'twice', x);
  checkAgainstReference(t, 'restarted id', x, again);
  await step('rnn', 7, x[0]!, { end: true });
  t.equal(await heldStates('rnn'), 0);
});

t.test('a step whose input is refused leaves the sequence as it was', async (t) => {
  const x = sequenceInputs(8, 3);
  const a = await step('rnn', 'bad-input', x[0]!, { start: true });
  const bad = { x: { dtype: 'float32' as const, shape: [3], data: new Float32Array(3) } };
  const err = await engine.infer('rnn', 'step', [bad], { sequence: { id: 'bad-input' } }).then(() => undefined, (e: unknown) => e);
  t.equal((err as ServingError).code, 'E_INVALID_SHAPE');
  const b = await step('rnn', 'bad-input', x[1]!);
  const c = await step('rnn', 'bad-input', x[2]!, { end: true });
  checkAgainstReference(t, 'bad-input', x, [a, b, c]);
});

t.test('a refused first step drops the sequence at once; its later steps are refused', async (t) => {
  const x = sequenceInputs(11, 2);
  const bad = { x: { dtype: 'float32' as const, shape: [3], data: new Float32Array(3) } };
  const outcomes = await engine.inferEach('rnn', 'step', [bad, { x: xTensor(x[0]!) }], { sequence: { id: 'bad-start', start: true } });
  t.equal((outcomes[0] as ServingError).code, 'E_INVALID_SHAPE');
  t.match((outcomes[1] as ServingError).message, /sequence "bad-start" of model 'rnn.onnx' was dropped: its first step was refused/);
  t.equal(engine.runtime('rnn').stats.liveSequences, 0);
  const again = await runSequence('rnn', 'bad-start', x);
  checkAgainstReference(t, 'bad-start restarted', x, again);
});

t.test('an idle sequence expires: its state is freed and its id refused without start', async (t) => {
  const x = sequenceInputs(9, 3);
  await step('rnn_short', 'idle', x[0]!, { start: true });
  await step('rnn_short', 'idle', x[1]!);
  t.equal(engine.runtime('rnn_short').stats.liveSequences, 1);
  t.equal(await heldStates('rnn_short'), 1, 'the actor holds its state');
  t.match(engine.metrics!.render(), /actorserve_sequences_live\{servable="rnn_short",version="1"\} 1/);
  const deadline = Date.now() + 5_000;
  while (engine.runtime('rnn_short').stats.liveSequences > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(engine.runtime('rnn_short').stats.liveSequences, 0, 'expired after its idle timeout');
  t.equal(engine.runtime('rnn_short').stats.sequencesExpired, 1);
  const err = await step('rnn_short', 'idle', x[2]!).then(() => undefined, (e: unknown) => e);
  t.equal((err as ServingError).code, 'E_INVALID_ARGUMENT');
  t.match((err as ServingError).message, /idle for more than 300 ms/);
  t.equal(await heldStates('rnn_short'), 0, 'the actor freed the state');
  const metrics = engine.metrics!.render();
  t.match(metrics, /actorserve_sequences_live\{servable="rnn_short",version="1"\} 0/);
  t.match(metrics, /actorserve_sequences_expired_total\{servable="rnn_short",version="1"\} 1/);
  // a sequence kept busy does not expire: steps 200 ms apart outlive the 300 ms timeout
  const xs = sequenceInputs(10, 4);
  const got: StepOutput[] = [];
  for (let k = 0; k < xs.length; k++) {
    got.push(await step('rnn_short', 'busy', xs[k]!, { start: k === 0, end: k === xs.length - 1 }));
    if (k < xs.length - 1) await new Promise((r) => setTimeout(r, 200));
  }
  checkAgainstReference(t, 'busy', xs, got);
});

t.test('a fixed-batch stateful model: padding rows neither read nor keep state', async (t) => {
  const xs = Array.from({ length: 3 }, (_, s) => sequenceInputs(400 + s, 4));
  const got = await Promise.all(xs.map((x, s) => runSequence('rnn_fixed', `fixed-${s}`, x)));
  got.forEach((g, s) => checkAgainstReference(t, `fixed-${s}`, xs[s]!, g));
  t.equal(await heldStates('rnn_fixed'), 0);
});

t.test('an actor that dies loses the sequences it held; they can start again', async (t) => {
  const x = sequenceInputs(600, 3);
  await step('rnn', 'doomed', x[0]!, { start: true });
  const handles = engine.runtime('rnn').deviceHandles();
  const held = await Promise.all(handles.map((d) => d.stats().then((s) => s.sequences)));
  const holder = handles[held.indexOf(1)]!;
  t.ok(holder, 'one actor holds the state');
  await holder.kill();
  const err = await step('rnn', 'doomed', x[1]!).then(() => undefined, (e: unknown) => e);
  t.equal((err as ServingError).code, 'E_ACTOR_DIED');
  t.match((err as Error).message, /sequence "doomed" of model 'rnn.onnx' was lost: the device actor holding its state died; start it again/);
  const again = await step('rnn', 'doomed', x[1]!).then(() => undefined, (e: unknown) => e);
  t.match((again as Error).message, /is not live/, 'afterwards the id is not live');
  t.equal(engine.runtime('rnn').stats.liveSequences, 0);
  const fresh = await runSequence('rnn', 'doomed', x);
  checkAgainstReference(t, 'restarted after the death', x, fresh);
});
