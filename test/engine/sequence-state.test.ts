// The pure parts of stateful sequences: stacking per-sequence states along a batch axis and
// cutting them back out, the device frame's sequence rows, and reading a request's sequence
// from options, Triton parameters and gRPC metadata text; declareModel's `sequence` checks.
import t from 'tap';
import { checkSequenceRequest, sequenceFromParameters, sequenceFromText, stackStates, stateShape, unstackState } from '../../dist/engine/sequence.js';
import { readRunFrame, runFrameBytes, writeRunFrame } from '../../dist/actors/batch-frames.js';
import { collectDeclarations, declareModel, newDeclarations } from '../../dist/engine/register.js';
import { ServingError } from '../../dist/engine/errors.js';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { rnnModel } from '../../dist/servables/example-models.js';
import { servableFixture } from '../helpers/fixtures.js';

t.test('states stack along any batch axis and cut back out unchanged', async (t) => {
  // rows of shape [2, 1, 3] (axis 1) / [1, 2, 3] (axis 0) / [2, 3, 1] (axis 2)
  for (const axis of [0, 1, 2]) {
    const rowDims = [2, 3, 3];
    rowDims[axis] = 1;
    const per = rowDims.reduce((a, b) => a * b, 1);
    const rows = [0, 1, 2].map((r) => Float32Array.from({ length: per }, (_, i) => r * 100 + i));
    const batch = stackStates([rows[0], undefined, rows[1], rows[2]], 'float32', rowDims, axis);
    const dims = rowDims.map((d, i) => (i === axis ? 4 : d));
    t.equal(batch.length, per * 4, `axis ${axis}: the batch holds every row`);
    t.same([...unstackState(batch, dims, axis, 0)], [...rows[0]!], `axis ${axis}: row 0`);
    t.same([...unstackState(batch, dims, axis, 1)], new Array(per).fill(0), `axis ${axis}: an undefined row is zeros`);
    t.same([...unstackState(batch, dims, axis, 3)], [...rows[2]!], `axis ${axis}: row 3`);
  }
  // axis 1 of [2, N, 2]: element (o, r, i) sits at (o * N + r) * 2 + i
  const b = stackStates([Float32Array.of(1, 2, 3, 4), Float32Array.of(5, 6, 7, 8)], 'float32', [2, 1, 2], 1);
  t.same([...b], [1, 2, 5, 6, 3, 4, 7, 8]);
  t.same(stateShape([1, 'N', 8], 1, 'h'), [1, 1, 8]);
  t.throws(() => stateShape([1, 'N', 'H'], 1, 'h'), /dim 2 is dynamic/);
  t.throws(() => stateShape([1, 'N'], 2, 'h'), /batchAxis 2 is out of range/);
});

t.test('a run frame carries its sequence rows', async (t) => {
  const frame = {
    id: 7,
    slot: 1,
    generation: 2,
    model: 0,
    subgraph: 0,
    inputs: [{ dtype: 'float32' as const, dims: [3, 4], offset: 0, length: 12 }],
    rows: [
      { handle: 41, start: true, end: false },
      { handle: 2 ** 40, start: false, end: true },
      { handle: 0, start: false, end: false },
    ],
  };
  const view = new DataView(new ArrayBuffer(runFrameBytes(frame) + 8));
  writeRunFrame(frame, view, 8);
  t.same(readRunFrame(view, 8), frame);
  const plain = { ...frame, rows: undefined };
  delete plain.rows;
  writeRunFrame(plain, view, 0);
  t.notOk('rows' in readRunFrame(view, 0), 'no rows for a stateless model');
});

t.test('a request names its sequence', async (t) => {
  t.same(checkSequenceRequest({ id: 'a', start: true }), { key: 's:a', id: 'a', start: true, end: false });
  t.same(checkSequenceRequest({ id: 7, end: true }), { key: 'n:7', id: 7, start: false, end: true });
  for (const [bad, pattern] of [
    [{ id: 0 }, /integer >= 1/],
    [{ id: '' }, /must not be empty/],
    [{ id: 'x'.repeat(257) }, /longer than 256/],
    [{ id: 1, start: 1 }, /start must be a boolean/],
    [{}, /id must be a string or an integer, got none/],
    [{ id: 1, stop: true }, /unknown key 'stop'/],
    [null, /must be an object/],
  ] as const) {
    t.throws(() => checkSequenceRequest(bad), pattern, JSON.stringify(bad));
  }
  t.equal(sequenceFromParameters(undefined), undefined);
  t.equal(sequenceFromParameters({ other: 1 }), undefined, 'other parameters are not looked at');
  t.equal(sequenceFromParameters({ sequence_id: 0 }), undefined, 'id 0 is no sequence (Triton)');
  t.equal(sequenceFromParameters({ sequence_id: '' }), undefined, 'id "" is no sequence');
  t.same(sequenceFromParameters({ sequence_id: 'u', sequence_start: true }), { id: 'u', start: true, end: false });
  t.throws(() => sequenceFromParameters({ sequence_end: true }), /need a sequence_id/);
  t.throws(() => sequenceFromParameters({ sequence_id: 1, sequence_end: 'true' }), /sequence_end must be a boolean/);
  const text = (m: Record<string, string>) => sequenceFromText((k) => m[k]);
  t.same(text({ id: '42', start: 'true' }), { id: 42, start: true, end: false }, 'digits are a numeric id');
  t.same(text({ id: 'u-1', end: '1' }), { id: 'u-1', start: false, end: true });
  t.same(text({ id: '99999999999999999999' }), { id: '99999999999999999999', start: false, end: false }, 'beyond 2^53: a string id');
  t.equal(text({}), undefined);
  t.throws(() => text({ id: '1', start: 'yes' }), /sequence-start must be true or false/);
});

t.test('declareModel checks its sequence option', async (t) => {
  const into = newDeclarations();
  await collectDeclarations(into, async () => {
    const m = declareModel({ modelFile: 'a.onnx', sequence: { state: [{ input: 'h', output: 'h2', batchAxis: 1 }] } });
    t.same(m.declaration.sequence, { state: [{ input: 'h', output: 'h2', batchAxis: 1, initial: 'zeros' }], idleTimeoutMs: 60_000 });
    const fail = (sequence: unknown, pattern: RegExp) => {
      try {
        declareModel({ modelFile: `b${Math.random()}.onnx`, sequence: sequence as never });
        t.fail('accepted');
      } catch (err) {
        t.ok(err instanceof ServingError);
        t.equal((err as ServingError).code, 'E_CONFIG_INVALID');
        t.match((err as Error).message, pattern);
      }
    };
    fail({ state: [] }, /state/);
    fail({ state: [{ input: 'h', output: 'h2', batchAxs: 1 }] }, /batchAxs.*batchAxis/);
    fail({ state: [{ input: 'h', output: 'h2', initial: 'ones' }] }, /initial/);
    fail({ state: [{ input: 'h', output: 'h' }] }, /names 'h' twice/);
    fail({ state: [{ input: 'h', output: 'h2' }], idleTimeoutMs: 0 }, /idleTimeoutMs/);
  });
});

t.test('a state the model does not have fails the load, naming it', async (t) => {
  const fixture = servableFixture('sequence-state');
  t.teardown(() => fixture.remove());
  fixture.config('rnn_bad', `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'rnn.onnx', sequence: { state: [{ input: 'hidden', output: 'h_next', batchAxis: 1 }] } });
register.method('step', { outputs: ['y'] }, (x) => register.addStage(model, [x], { outputsCount: 1 }));
`);
  fixture.model('rnn_bad', 1, 'rnn.onnx', rnnModel({ batch: 'N' }));
  const engine = new ServingServer();
  engine.log = () => {};
  const err = await engine.startServables(new ServableStartConfig({ servableDirectory: fixture.dir, servableName: 'rnn_bad' })).then(() => undefined, (e: unknown) => e);
  t.equal((err as ServingError).code, 'E_CONFIG_INVALID');
  t.match((err as Error).message, /state 'hidden': no graph of the model has an input 'hidden'/);
  await engine.stop();
});
