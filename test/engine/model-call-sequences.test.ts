// Stateful models called from stage functions: `model.call(inputs, { subgraph, sequence })`,
// `model.endSequence(id)`, and the sequences a stage-function instance leaves open ended when
// it finishes (docs/sequences.md). The model is generated here: one model of three subgraphs
// sharing its state (float32 s [N, 2], int64 pos [N, 1]): `load` sets s = x, `step` makes
// s = s + x, `peek` has no state (the state passes through it); load and step count pos + 1.
// Real device actors (two, so that affinity across subgraphs matters) and real stage threads.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { tensorStrings } from '../../dist/engine/tensor.js';
import { planStateGraphs } from '../../dist/engine/sequence.js';
import type { DType } from '../../dist/engine/dtypes.js';
import { addModel } from '../../dist/servables/example-models.js';
import { OnnxGraphBuilder, mulberry32 } from '../../dist/servables/onnx-builder.js';
import { servableFixture } from '../helpers/fixtures.js';

const N = 'N';

/**
 * A graph of the model: x [N, 2] and the state pos in; `body` makes y and s_next (reading s or
 * not) and any extra output; pos_next = steps = pos + 1 out, then y, s_next, and the extras.
 */
function accGraph(name: string, body: (g: OnnxGraphBuilder) => OnnxGraphBuilder, extras: readonly string[] = []): Uint8Array {
  const g = body(new OnnxGraphBuilder(name).addInput('x', 'float32', [N, 2]).addInput('pos', 'int64', [N, 1]))
    .addInitializer('one', 'int64', [1], BigInt64Array.of(1n))
    .addNode('Add', ['pos', 'one'], ['pos_next'])
    .addNode('Identity', ['pos_next'], ['steps'])
    .addOutput('y', 'float32', [N, 2])
    .addOutput('s_next', 'float32', [N, 2])
    .addOutput('pos_next', 'int64', [N, 1])
    .addOutput('steps', 'int64', [N, 1]);
  for (const e of extras) g.addOutput(e, 'int64', [N, 1]);
  return g.toBytes();
}

/** load: y = s_next = x (reads no s: a load ignores the past). */
function loadGraph(): Uint8Array {
  return accGraph('acc_load', (g) => g.addNode('Identity', ['x'], ['y']).addNode('Identity', ['x'], ['s_next']));
}

/** step: y = s_next = s + x, and batch = the batch size on every row. */
function stepGraph(): Uint8Array {
  return accGraph(
    'acc_step',
    (g) =>
      g
        .addInput('s', 'float32', [N, 2])
        .addInitializer('first', 'int64', [1], BigInt64Array.of(0n))
        .addNode('Add', ['s', 'x'], ['s_next'])
        .addNode('Identity', ['s_next'], ['y'])
        .addNode('Shape', ['x'], ['x_shape'])
        .addNode('Gather', ['x_shape', 'first'], ['n'])
        .addNode('Shape', ['pos'], ['pos_shape'])
        .addNode('Expand', ['n', 'pos_shape'], ['batch']),
    ['batch'],
  );
}

/** peek: y = 2x; no state. */
function peekGraph(): Uint8Array {
  return new OnnxGraphBuilder('acc_peek')
    .addInput('x', 'float32', [N, 2])
    .addInitializer('two', 'float32', [1], Float32Array.of(2))
    .addNode('Mul', ['x', 'two'], ['y'])
    .addOutput('y', 'float32', [N, 2])
    .toBytes();
}

/** A graph that reads state s but makes no s_next (refused at load). */
function readOnlyGraph(): Uint8Array {
  return new OnnxGraphBuilder('acc_read_only')
    .addInput('x', 'float32', [N, 2])
    .addInput('s', 'float32', [N, 2])
    .addNode('Add', ['s', 'x'], ['y'])
    .addOutput('y', 'float32', [N, 2])
    .toBytes();
}

const STATE = `[{ input: 's', output: 's_next' }, { input: 'pos', output: 'pos_next' }]`;

const CONFIG = (batching: string) => `
import { register, ServingError, type Tensor } from 'actorserve';
const acc = register.declareModel({ modelFile: ['load.onnx', 'step.onnx', 'peek.onnx'], ${batching}, sequence: { state: ${STATE} } });
const add = register.declareModel({ modelFile: 'add.onnx' });

const f32 = (data: Float32Array) => ({ dtype: 'float32' as const, shape: [2], data });
const LOAD = 0, STEP = 1, PEEK = 2;

/**
 * Drives sequences base + k (k < S) at once: sequence k makes the calls ops[k][i] with x
 * xs[k][i] in order (start on the first, end on the last unless 'leave'), yielding to the event
 * loop now and then so that the sequences interleave differently.
 */
export async function drive(ops: Tensor, xs: Tensor, base: Tensor, leave: Tensor) {
  const [S, T] = ops.shape as [number, number];
  const o = ops.data as Int32Array;
  const x = xs.data as Float32Array;
  const first = (base.data as Int32Array)[0]!;
  const keep = (leave.data as Int32Array)[0] === 1;
  const ys = new Float32Array(S * T * 2);
  const steps = new Int32Array(S * T);
  const batch = new Int32Array(S * T);
  const one = async (k: number) => {
    const id = first + k;
    for (let i = 0; i < T; i++) {
      const at = k * T + i;
      const op = o[at]!;
      const sequence = { id, start: i === 0, end: !keep && i === T - 1 };
      const out = await acc.call([f32(x.slice(at * 2, at * 2 + 2))], { subgraph: op, sequence });
      ys.set(out[0]!.data as Float32Array, at * 2);
      if (op !== PEEK) steps[at] = Number((out[1]!.data as BigInt64Array)[0]);
      if (op === STEP) batch[at] = Number((out[2]!.data as BigInt64Array)[0]);
      if ((k + i) % 3 === 0) await new Promise((r) => setImmediate(r));
    }
  };
  await Promise.all(Array.from({ length: S }, (_, k) => one(k)));
  return [
    { dtype: 'float32', shape: [S, T, 2], data: ys },
    { dtype: 'int32', shape: [S, T], data: steps },
    { dtype: 'int32', shape: [S, T], data: batch },
  ];
}

const x1 = f32(Float32Array.of(1, 2));
const message = (err: unknown) => \`\${(err as ServingError).code}: \${(err as Error).message}\`;
const stepsOf = (out: Tensor[]) => Number((out[1]!.data as BigInt64Array)[0]);

/** One scenario (which) on sequence id; answers what happened, as text. */
export async function scenario(which: Tensor, idTensor: Tensor) {
  const id = (idTensor.data as Int32Array)[0]!;
  switch ((which.data as Int32Array)[0]) {
    case 0: { // endSequence frees; an unknown id is a no-op; the id then needs a start
      await acc.call([x1], { sequence: { id, start: true } });
      await acc.endSequence(id);
      await acc.endSequence(id + 1000);
      try {
        await acc.call([x1], { subgraph: STEP, sequence: { id } });
        return 'not refused';
      } catch (err) {
        return message(err);
      }
    }
    case 1: { // starts three sequences and returns without ending them
      for (let k = 0; k < 3; k++) await acc.call([x1], { sequence: { id: id + k, start: true } });
      return 'left open';
    }
    case 2: { // starts one and throws
      await acc.call([x1], { sequence: { id, start: true } });
      throw new Error('the stage failed on purpose');
    }
    case 3: { // a second start of a live id is refused; the sequence goes on
      await acc.call([x1], { sequence: { id, start: true } });
      let refusal = 'not refused';
      try {
        await acc.call([x1], { sequence: { id, start: true } });
      } catch (err) {
        refusal = message(err);
      }
      const out = await acc.call([x1], { subgraph: STEP, sequence: { id, end: true } });
      return \`\${refusal} | steps \${stepsOf(out)}\`;
    }
    case 4: // a stateful model called without a sequence
      await acc.call([x1]);
      return 'not refused';
    case 5: // a sequence on a stateless model
      await add.call([{ dtype: 'float32', shape: [2, 2], data: new Float32Array(4) }, { dtype: 'float32', shape: [2, 2], data: new Float32Array(4) }], { sequence: { id, start: true } });
      return 'not refused';
    case 6: // id 0 means no sequence (Triton): refused
      await acc.call([x1], { sequence: { id: 0, start: true } });
      return 'not refused';
    case 7: { // a refused first step drops the sequence; a multi-instance call is consecutive steps
      let refusal = 'not refused';
      try {
        await acc.call([{ dtype: 'float32', shape: [3], data: Float32Array.of(1, 2, 3) }], { sequence: { id, start: true } });
      } catch (err) {
        refusal = message(err);
      }
      let after = 'not refused';
      try {
        await acc.call([x1], { subgraph: STEP, sequence: { id } });
      } catch (err) {
        after = message(err);
      }
      const outs = await acc.callMany([[x1], [x1], [x1]], { subgraph: STEP, sequence: { id, start: true, end: true } });
      return \`\${refusal} | \${after} | \${outs.map(stepsOf).join(',')} \${outs.map((o) => (o[0]!.data as Float32Array).join(',')).join(' ')}\`;
    }
    case 8: { // starts id and leaves it open: the next instance of the same task may start it again
      const out = await acc.call([x1], { sequence: { id, start: true } });
      return \`started, steps \${stepsOf(out)}\`;
    }
    case 9: { // starts id, then outlives its request's deadline
      await acc.call([x1], { sequence: { id, start: true } });
      await new Promise((r) => setTimeout(r, 1000));
      await acc.call([x1], { subgraph: STEP, sequence: { id } }).catch(() => undefined);
      return 'late';
    }
    default:
      return 'no such scenario';
  }
}

register.method('drive', { outputs: ['ys', 'steps', 'batch'] }, (ops, xs, base, leave) => register.addStage(drive, [ops, xs, base, leave], { outputsCount: 3 }));
register.method('scenario', { outputs: ['text'] }, (which, id) => register.addStage(scenario, [which, id]));
`;

const engine = new ServingServer();
engine.log = () => {};
const fx = servableFixture('model-call-sequences');
for (const [name, batching] of [
  ['acc', 'maxBatchSize: 8'],
  // lockstep: a batch goes when all four sequences' calls are queued (or after 2 s)
  ['lockstep', 'maxBatchSize: 4, maxQueueDelayMs: 2000'],
] as const) {
  fx.config(name, CONFIG(batching));
  fx.model(name, 1, 'load.onnx', loadGraph());
  fx.model(name, 1, 'step.onnx', stepGraph());
  fx.model(name, 1, 'peek.onnx', peekGraph());
  fx.model(name, 1, 'add.onnx', addModel({ batch: 'N' }));
}
fx.config('bad_read_only', `import { register } from 'actorserve';
register.declareModel({ modelFile: ['load.onnx', 'read.onnx'], sequence: { state: ${STATE} } });
register.method('echo', { outputs: ['x'] }, (x) => x);
`);
fx.model('bad_read_only', 1, 'load.onnx', loadGraph());
fx.model('bad_read_only', 1, 'read.onnx', readOnlyGraph());

t.before(async () => {
  await engine.startServables([
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'acc', deviceIds: [0, 1], intraOpThreads: 1 }),
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'lockstep', deviceIds: [0], intraOpThreads: 1 }),
  ]);
});
t.teardown(async () => {
  await engine.stop();
  fx.remove();
});

const i32 = (data: number[], shape: number[]) => ({ dtype: 'int32' as const, shape, data: Int32Array.from(data) });

/** A plan: S sequences of T calls (random subgraphs, the first a load in half of them), x small integers. */
function plan(seed: number, S: number, T: number, ops?: (k: number, i: number) => number) {
  const rand = mulberry32(seed);
  const o = Array.from({ length: S * T }, (_, at) => (ops ? ops(Math.floor(at / T), at % T) : Math.floor(rand() * 3)));
  const xs = Float32Array.from({ length: S * T * 2 }, () => Math.floor(rand() * 9) - 4);
  return { S, T, ops: o, xs };
}

/** What each call of each sequence must give: the plan run one sequence at a time, in plain TS. */
function reference(p: ReturnType<typeof plan>) {
  const ys = new Float32Array(p.S * p.T * 2);
  const steps = new Int32Array(p.S * p.T);
  for (let k = 0; k < p.S; k++) {
    const s = [0, 0];
    let pos = 0;
    for (let i = 0; i < p.T; i++) {
      const at = k * p.T + i;
      const x = [p.xs[at * 2]!, p.xs[at * 2 + 1]!];
      const op = p.ops[at]!;
      if (op === 2) {
        ys.set([2 * x[0]!, 2 * x[1]!], at * 2);
        continue;
      }
      if (op === 0) s.splice(0, 2, x[0]!, x[1]!);
      else s.splice(0, 2, s[0]! + x[0]!, s[1]! + x[1]!);
      ys.set(s, at * 2);
      steps[at] = ++pos;
    }
  }
  return { ys, steps };
}

async function drive(servable: string, p: ReturnType<typeof plan>, base: number, leave = false) {
  const [out] = await engine.infer(servable, 'drive', [
    { ops: i32(p.ops, [p.S, p.T]), xs: { dtype: 'float32', shape: [p.S, p.T, 2], data: p.xs }, base: i32([base], []), leave: i32([leave ? 1 : 0], []) },
  ]);
  return { ys: out!.ys!.data as Float32Array, steps: out!.steps!.data as Int32Array, batch: out!.batch!.data as Int32Array };
}

async function scenario(which: number, id: number): Promise<string> {
  const [out] = await engine.infer('acc', 'scenario', [{ which: i32([which], []), id: i32([id], []) }]);
  return tensorStrings(out!.text!)[0]!;
}

async function heldStates(servable: string): Promise<number> {
  const stats = await Promise.all(engine.runtime(servable).deviceHandles().map((d) => d.stats()));
  return stats.reduce((n, s) => n + s.sequences, 0);
}

/** The actors free a state a moment after the sequence ends (a control call): wait for it, bounded. */
async function settledStates(servable: string): Promise<number> {
  let held = await heldStates(servable);
  for (let i = 0; i < 100 && held > 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    held = await heldStates(servable);
  }
  return held;
}

t.test('sequences driven at once from a stage function, interleaved, each give their solo results', async (t) => {
  const before = engine.runtime('acc').stats;
  const p = plan(7, 10, 12);
  const got = await drive('acc', p, 100);
  const want = reference(p);
  t.same([...got.ys], [...want.ys], 'every y is that of the sequence run alone (state shared by load and step, untouched by peek)');
  t.same([...got.steps], [...want.steps], 'the int64 state counts each sequence’s own load and step calls');
  const after = engine.runtime('acc').stats;
  t.equal(after.sequencesStarted - before.sequencesStarted, 10);
  t.equal(after.batchesByDevice.size, 2, 'both device actors held sequences');
  t.equal(after.liveSequences, 0, 'every sequence ended with its last call');
  t.equal(await settledStates('acc'), 0, 'no state is left in the actors');
});

t.test('calls of different sequences to the same subgraph share batches', async (t) => {
  const before = engine.runtime('lockstep').stats.batchSizes.get(4) ?? 0;
  // four sequences: a load then five steps each, in lockstep (each waits for its own call)
  const p = plan(11, 4, 6, (_, i) => (i === 0 ? 0 : 1));
  const got = await drive('lockstep', p, 1);
  const want = reference(p);
  t.same([...got.ys], [...want.ys], 'batched, each sequence still gets its own results');
  t.same([...got.steps], [...want.steps]);
  const stepBatches = [...got.batch].filter((_, at) => at % p.T !== 0);
  t.same(stepBatches, stepBatches.map(() => 4), 'the model saw every step call in a batch of all four sequences');
  t.equal((engine.runtime('lockstep').stats.batchSizes.get(4) ?? 0) - before, 6, 'six batches of four: one load and five steps');
});

t.test('endSequence frees the state at once; an unknown id is ignored', async (t) => {
  const text = await scenario(0, 500);
  t.match(text, /^E_INVALID_ARGUMENT: sequence 500 of model 'load\.onnx;step\.onnx;peek\.onnx' is not live \(.*\): call with start: true first$/, 'a call after endSequence without start is refused as not live, saying start: true');
  t.equal(engine.runtime('acc').stats.liveSequences, 0);
  t.equal(await settledStates('acc'), 0);
});

t.test('sequences an instance started and did not end end when it finishes', async (t) => {
  // one request, two instances (run one after the other in one stage task): the second can
  // start the id again only if the first instance's sequence ended when that instance returned
  const twice = await engine.infer('acc', 'scenario', [0, 1].map(() => ({ which: i32([8], []), id: i32([650], []) })));
  t.same(twice.map((o) => tensorStrings(o.text!)[0]), ['started, steps 1', 'started, steps 1'], 'each instance’s sequence ends as that instance returns');
  t.equal(await scenario(1, 600), 'left open');
  t.equal(engine.runtime('acc').stats.liveSequences, 0, 'ended when the instance returned');
  t.equal(await settledStates('acc'), 0, 'their states are freed');
  const p = plan(3, 3, 4);
  const got = await drive('acc', p, 700, true);
  t.same([...got.ys], [...reference(p).ys], 'a driver that never ends its sequences gets its results');
  t.equal(engine.runtime('acc').stats.liveSequences, 0, 'and leaves none live');
  const err = await engine.infer('acc', 'scenario', [{ which: i32([2], []), id: i32([800], []) }]).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof ServingError);
  t.match((err as ServingError).message, /the stage failed on purpose/, 'the instance failed');
  t.equal(engine.runtime('acc').stats.liveSequences, 0, 'a throwing instance leaves none live either');
  t.equal(await settledStates('acc'), 0);
  // an instance still running when its request's deadline passes: its sequence ends with the request
  const late = await engine.infer('acc', 'scenario', [{ which: i32([9], []), id: i32([850], []) }], { deadlineMs: 300 }).then(() => undefined, (e: unknown) => e);
  t.equal((late as ServingError).code, 'E_DEADLINE_EXCEEDED');
  t.equal(engine.runtime('acc').stats.liveSequences, 0, 'the request ended: so did the sequence its stage started');
  t.equal(await settledStates('acc'), 0);
  // the ids are free again: a new start of each works
  t.match(await scenario(3, 600), /\| steps 2$/);
});

t.test('refusals say why', async (t) => {
  t.match(await scenario(3, 900), /^E_INVALID_ARGUMENT: sequence 900 of model 'load\.onnx;step\.onnx;peek\.onnx' is already live; a second start is refused \(end it with end: true or model.endSequence, or use another id\) \| steps 2$/, 'a second start of a live id; the sequence goes on');
  const refused = async (which: number, code: string, pattern: RegExp, what: string) => {
    const err = await scenario(which, 950).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof ServingError, `${what}: the instance fails`);
    t.equal((err as ServingError).code, code, `${what}: ${code}`);
    t.match((err as Error).message, pattern, `${what}: says why`);
  };
  await refused(4, 'E_STAGE_FAILED', /model 'load\.onnx;step\.onnx;peek\.onnx' is stateful: a call names its sequence/, 'a stateful model without a sequence');
  await refused(5, 'E_STAGE_FAILED', /model 'add\.onnx' keeps no state/, 'a sequence on a stateless model');
  await refused(6, 'E_STAGE_FAILED', /sequence: a numeric id must be an integer >= 1, got 0/, 'id 0');
  const text = await scenario(7, 960);
  const [first, after, rest] = text.split(' | ');
  t.match(first, /^E_INVALID_SHAPE|^E_INVALID_ARGUMENT/, 'a first step with a bad input is refused');
  t.match(after, /sequence 960 .* is not live/, 'and drops the sequence');
  t.equal(rest, '1,2,3 1,2 2,4 3,6', 'a restart runs; three instances of one call are three consecutive steps');
  t.equal(engine.runtime('acc').stats.liveSequences, 0);
  t.equal(await settledStates('acc'), 0);
});

t.test('the load checks each subgraph against the shared state', async (t) => {
  const other = new ServingServer();
  other.log = () => {};
  const err = await other
    .startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'bad_read_only', deviceIds: [0], intraOpThreads: 1 }))
    .then(() => undefined, (e: unknown) => e);
  t.equal((err as ServingError).code, 'E_CONFIG_INVALID', 'a subgraph that reads a state it does not update: E_CONFIG_INVALID');
  t.match((err as Error).message, /state 's': subgraph 1's input 's' is the state but the graph has no output 's_next' to update it/, 'names the state and the subgraph');
  await other.stop();

  const v = (name: string, dtype: DType, dims: (number | string)[]) => ({ name, dtype, dims });
  const state = [
    { input: 's', output: 's_next', batchAxis: 0, initial: 'zeros' as const },
    { input: 'pos', output: 'pos_next', batchAxis: 0, initial: 'zeros' as const },
  ];
  const load = { inputs: [v('x', 'float32', [N, 2]), v('pos', 'int64', [N, 1])], outputs: [v('y', 'float32', [N, 2]), v('s_next', 'float32', [N, 2]), v('pos_next', 'int64', [N, 1])] };
  const step = { inputs: [v('x', 'float32', [N, 2]), v('s', 'float32', [N, 2]), v('pos', 'int64', [N, 1])], outputs: [v('y', 'float32', [N, 2]), v('s_next', 'float32', [N, 2]), v('pos_next', 'int64', [N, 1])] };
  const peek = { inputs: [v('x', 'float32', [N, 2])], outputs: [v('y', 'float32', [N, 2])] };
  const plans = planStateGraphs('acc', state, [load, step, peek]);
  t.same(
    plans.map((p) => ({ inputs: p.batchInputs, outputs: p.batchOutputs, reads: p.reads.map((r) => r.input), writes: p.writes.map((w) => w.output) })),
    [
      { inputs: ['x'], outputs: ['y'], reads: ['pos'], writes: ['s_next', 'pos_next'] },
      { inputs: ['x'], outputs: ['y'], reads: ['s', 'pos'], writes: ['s_next', 'pos_next'] },
      { inputs: ['x'], outputs: ['y'], reads: [], writes: [] },
    ],
    'each subgraph reads and writes the states it has; the batch carries the rest',
  );
  t.same(plans[1]!.reads.map((r) => [r.dtype, r.rowDims]), [['float32', [1, 2]], ['int64', [1, 1]]]);
  const refused = (graphs: Parameters<typeof planStateGraphs>[2], pattern: RegExp, what: string) => {
    const e = (() => {
      try {
        planStateGraphs('acc', state, graphs);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    t.equal((e as ServingError | undefined)?.code, 'E_CONFIG_INVALID', `${what}: E_CONFIG_INVALID`);
    t.match((e as Error | undefined)?.message, pattern, `${what}: says why`);
  };
  refused([{ ...load, outputs: [v('y', 'float32', [N, 2]), v('s_next', 'float64', [N, 2]), v('pos_next', 'int64', [N, 1])] }, step], /model 'acc' state 's': subgraph 0's output 's_next' is float64 \[N, 2\]; the state is float32 \[batch, 2\]/, 'another dtype');
  refused([load, { ...step, inputs: [v('x', 'float32', [N, 2]), v('s', 'float32', [N, 3]), v('pos', 'int64', [N, 1])] }], /subgraph 0's output 's_next' is float32 \[N, 2\]; the state is float32 \[batch, 3\]/, 'other dims (the state is as the first graph taking it has it)');
  refused([load, { ...step, outputs: [v('y', 'float32', [N, 2]), v('s_next', 'float32', [N, 2])] }], /state 'pos': subgraph 1's input 'pos' is the state but the graph has no output 'pos_next'/, 'an int64 state read and not updated');
  refused([peek], /state 's': no graph of the model has an input 's'/, 'a state no graph takes');
});
