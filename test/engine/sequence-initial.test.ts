// A state's initial value from a NumPy file (`initial: { file }`, docs/sequences.md), on the
// generated `rnn` cell: a sequence started from h0.npy and count0.npy (the state the reference
// reaches after one step) gives exactly the reference's later steps, for several sequences at
// once; an initial value is read at load, never changed by the sequences that start from it;
// a missing, malformed, wrong-dtype or wrong-dims file, one outside the version folder, or a
// bad `initial`, fails the load with E_CONFIG_INVALID naming the state and the file.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { writeNpy } from '../../dist/engine/npy.js';
import { RNN_HIDDEN, rnnModel, rnnReference } from '../../dist/servables/example-models.js';
import { planStateGraphs } from '../../dist/engine/sequence.js';
import { readStateInitials } from '../../dist/actors/sequences.js';
import { modelFilePath } from '../../dist/engine/servable-dir.js';
import { collectDeclarations, declareModel, newDeclarations } from '../../dist/engine/register.js';
import { servableFixture } from '../helpers/fixtures.js';
import { sequenceInputs, xTensor } from '../helpers/sequences.js';

const fixture = servableFixture('sequence-initial');
t.teardown(() => fixture.remove());

/** A servable of the rnn cell whose h and count start from the given files. */
function rnnServable(name: string, h: string, count = "'zeros'"): void {
  fixture.config(
    name,
    `import { register } from 'actorserve';
const model = register.declareModel({
  modelFile: 'rnn.onnx',
  maxBatchSize: 4,
  sequence: { state: [{ input: 'h', output: 'h_next', batchAxis: 1, initial: ${h} }, { input: 'count', output: 'count_next', initial: ${count} }] },
});
register.method('step', { outputs: ['y', 'steps'] }, (x) => register.addStage(model, [x], { outputsCount: 2 }));
`,
  );
  fixture.model(name, 1, 'rnn.onnx', rnnModel({ batch: 'N' }));
}

const f32 = (shape: number[], data: ArrayLike<number>) => writeNpy({ dtype: 'float32', shape, data: Float32Array.from(data) });

t.test('sequences start from the state in the files', async (t) => {
  // Sequence s: the reference over x0..x3; the files hold its state after x0 (h = y0, count = 1).
  const xs = [0, 1, 2].map((s) => sequenceInputs(s, 4));
  const ref0 = rnnReference(xs[0]!);
  rnnServable('rnn_init', "{ file: 'h0.npy' }", "{ file: 'count0.npy' }");
  fixture.model('rnn_init', 1, 'h0.npy', f32([1, RNN_HIDDEN], ref0[0]!.y)); // without the batch axis
  fixture.model('rnn_init', 1, 'count0.npy', f32([1, 1], [1])); // with a batch axis of 1
  // h0.npy is the state after x0 of sequence 0 only: every sequence starts from it.
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  await engine.startServables(new ServableStartConfig({ servableDirectory: fixture.dir, servableName: 'rnn_init' }));

  const run = async (id: string, steps: readonly Float32Array[]) => {
    const got: { y: Float32Array; steps: number }[] = [];
    for (let k = 0; k < steps.length; k++) {
      const [out] = await engine.infer('rnn_init', 'step', [{ x: xTensor(steps[k]!) }], { sequence: { id, start: k === 0, end: k === steps.length - 1 } });
      got.push({ y: out!.y!.data as Float32Array, steps: (out!.steps!.data as Float32Array)[0]! });
    }
    return got;
  };
  // three sequences at once (batched together), then one more after them
  const rounds = [...(await Promise.all(xs.map((x, s) => run(`s${s}`, x.slice(1))))), await run('again', xs[0]!.slice(1))];
  rounds.forEach((got, s) => {
    const x = s < 3 ? xs[s]! : xs[0]!;
    const want = rnnReference([xs[0]![0]!, ...x.slice(1)]).slice(1); // from sequence 0's state after x0
    t.equal(got.length, 3, `sequence ${s}: one output per step`);
    let worst = 0;
    got.forEach((g, k) => {
      t.equal(g.steps, k + 2, `sequence ${s} step ${k}: the count started from count0.npy`);
      for (let j = 0; j < RNN_HIDDEN; j++) worst = Math.max(worst, Math.abs(g.y[j]! - want[k]!.y[j]!));
    });
    t.ok(worst < 1e-5, `sequence ${s}: every y within 1e-5 of the reference from h0.npy (worst ${worst.toExponential(2)})`);
  });
  // and a sequence from zeros differs: the file's value was used
  const [first] = await engine.infer('rnn_init', 'step', [{ x: xTensor(xs[0]![0]!) }], { sequence: { id: 'z', start: true, end: true } });
  const fromZeros = rnnReference([xs[0]![0]!])[0]!.y;
  t.ok(Math.abs((first!.y!.data as Float32Array)[0]! - fromZeros[0]!) > 1e-4, 'a start is not from zeros');
});

t.test('a bad initial file fails the load, naming the state and the file', async (t) => {
  const cases: [string, string, Uint8Array | undefined, RegExp][] = [
    ['missing', "{ file: 'h0.npy' }", undefined, /model 'rnn.onnx' state 'h': initial file 'h0.npy' cannot be read \(ENOENT\)/],
    ['dims', "{ file: 'h0.npy' }", f32([RNN_HIDDEN], new Float32Array(RNN_HIDDEN)), /state 'h': initial file 'h0.npy' holds float32 \[8\]; the state is float32 \[1, 8\]/],
  ];
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  for (const [name, initial, bytes, pattern] of cases) {
    rnnServable(`bad_${name}`, initial);
    if (bytes) fixture.model(`bad_${name}`, 1, 'h0.npy', bytes);
    const err = await engine.startServables(new ServableStartConfig({ servableDirectory: fixture.dir, servableName: `bad_${name}` })).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof ServingError, `${name}: refused`);
    t.equal((err as ServingError).code, 'E_CONFIG_INVALID', `${name}: E_CONFIG_INVALID`);
    t.match((err as Error).message, pattern, `${name}: the message names the state and the file`);
  }
});

t.test('an initial value fits its state: its dtype, its dims without the batch axis or with it of 1', async (t) => {
  const graph = { inputs: [{ name: 'h', dtype: 'float32' as const, dims: [2, 'N', 3] }], outputs: [{ name: 'h2', dtype: 'float32' as const, dims: [2, 'N', 3] }] };
  const plan = (shape: number[], dtype: 'float32' | 'float64' = 'float32') => {
    const data = dtype === 'float32' ? new Float32Array(6).fill(0.5) : new Float64Array(6);
    const value = { file: 'h0.npy', dtype, shape, data };
    return planStateGraphs('m.onnx', [{ input: 'h', output: 'h2', batchAxis: 1, initial: { file: 'h0.npy' }, value }], [graph])[0]!.reads[0]!;
  };
  t.same([...plan([2, 3]).initial!], new Array(6).fill(0.5), 'without the batch axis');
  t.same([...plan([2, 1, 3]).initial!], new Array(6).fill(0.5), 'with a batch axis of 1');
  t.equal(planStateGraphs('m.onnx', [{ input: 'h', output: 'h2', batchAxis: 1, initial: 'zeros' }], [graph])[0]!.reads[0]!.initial, undefined, 'zeros: none');
  const refused = (shape: number[], dtype: 'float32' | 'float64', pattern: RegExp) =>
    t.throws(() => plan(shape, dtype), { code: 'E_CONFIG_INVALID', message: pattern }, `${dtype} [${shape.join(', ')}]`);
  refused([2, 3], 'float64', /^model 'm.onnx' state 'h': initial file 'h0.npy' holds float64 \[2, 3\]; the state is float32 \[2, 3\] \(or \[2, 1, 3\] with its batch axis 1 of 1\)$/);
  refused([2, 2, 3], 'float32', /initial file 'h0.npy' holds float32 \[2, 2, 3\]/);
  refused([6], 'float32', /initial file 'h0.npy' holds float32 \[6\]/);
  const location = { root: fixture.dir, name: 'rnn_x', dir: fixture.dir, configPath: '' };
  // a file that is not a .npy array
  fixture.model('rnn_garbage', 1, 'h0.npy', Buffer.from('not numpy at all'));
  await t.rejects(
    readStateInitials('m.onnx', [{ input: 'h', output: 'h2', batchAxis: 1, initial: { file: 'h0.npy' } }], (file) => modelFilePath({ ...location, name: 'rnn_garbage', dir: `${fixture.dir}/rnn_garbage` }, 1, file)),
    { code: 'E_CONFIG_INVALID', message: /^model 'm.onnx' state 'h': initial file 'h0.npy': not a .npy file/ },
  );
  // a file outside the version folder is refused as model files are
  await t.rejects(
    readStateInitials('m.onnx', [{ input: 'h', output: 'h2', batchAxis: 1, initial: { file: '../../h0.npy' } }], (file) => modelFilePath(location, 1, file)),
    { code: 'E_CONFIG_INVALID', message: /^model 'm.onnx' state 'h': initial file '..\/..\/h0.npy' cannot be read \(servable 'rnn_x': model file '..\/..\/h0.npy' lies outside/ },
  );
});

t.test('declareModel checks initial', async (t) => {
  await collectDeclarations(newDeclarations(), async () => {
    const m = declareModel({ modelFile: 'a.onnx', sequence: { state: [{ input: 'h', output: 'h2', initial: { file: 'h0.npy' } }] } });
    t.same(m.declaration.sequence?.state[0]?.initial, { file: 'h0.npy' });
    for (const initial of ['ones', { file: '' }, { file: 3 }, { file: 'h0.npy', dtype: 'float32' }, { path: 'h0.npy' }]) {
      t.throws(
        () => declareModel({ modelFile: `b${JSON.stringify(initial)}.onnx`, sequence: { state: [{ input: 'h', output: 'h2', initial: initial as never }] } }),
        { code: 'E_CONFIG_INVALID', message: /initial must be 'zeros' or \{ file: 'name.npy' \}/ },
        JSON.stringify(initial),
      );
    }
  });
});
