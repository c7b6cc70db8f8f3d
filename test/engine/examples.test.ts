// The bundled example servables answer through the engine API with the right numbers.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { matmulWeight } from '../../dist/servables/example-models.js';
import { BUNDLED_SERVABLES, f32 } from '../helpers/fixtures.js';

const engine = new ServingServer();
engine.log = () => {};

t.before(async () => {
  await ensureExampleModels(BUNDLED_SERVABLES);
  await engine.startServables([
    new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES, servableName: 'add', deviceIds: [0, 1] }),
    new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES, servableName: 'add_sub' }),
    new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES, servableName: 'matmul' }),
  ]);
});
t.teardown(() => engine.stop());

t.test('add_common adds element-wise, per instance, in order', async (t) => {
  const out = await engine.infer('add', 'add_common', [
    { x1: f32([1, 2, 3, 4]), x2: f32([10, 20, 30, 40]) },
    { x1: f32([1, 1, 1, 1]), x2: f32([1, 1, 1, 1]) },
  ]);
  t.equal(out.length, 2);
  t.same(out[0]!.y!.shape, [2, 2]);
  t.equal(out[0]!.y!.dtype, 'float32');
  t.same([...out[0]!.y!.data as Float32Array], [11, 22, 33, 44]);
  t.same([...out[1]!.y!.data as Float32Array], [2, 2, 2, 2]);
});

t.test('add_cast casts any numeric dtype to float32 in a TS stage', async (t) => {
  const out = await engine.infer('add', 'add_cast', [
    { x1: { dtype: 'int32', shape: [2, 2], data: Int32Array.of(1, 2, 3, 4) }, x2: { dtype: 'float64', shape: [2, 2], data: Float64Array.of(0.5, 0.5, 0.5, 0.5) } },
    { x1: { dtype: 'int64', shape: [2, 2], data: BigInt64Array.of(1n, 2n, 3n, 4n) }, x2: { dtype: 'uint8', shape: [2, 2], data: Uint8Array.of(1, 1, 1, 1) } },
  ]);
  t.same([...out[0]!.y!.data as Float32Array], [1.5, 2.5, 3.5, 4.5]);
  t.same([...out[1]!.y!.data as Float32Array], [2, 3, 4, 5]);
});

t.test('add_sub_only_model chains two models: x1 + x2 - x3', async (t) => {
  const [out] = await engine.infer('add_sub', 'add_sub_only_model', [{ x1: f32([1, 2, 3, 4]), x2: f32([1, 1, 1, 1]), x3: f32([4, 3, 2, 1]) }]);
  t.same([...out!.y!.data as Float32Array], [-2, 0, 2, 4]);
});

t.test('add_sub_complex puts function stages between models: x1 + x2 + 1 - x3 + 1', async (t) => {
  const [out] = await engine.infer('add_sub', 'add_sub_complex', [{ x1: f32([1, 2, 3, 4]), x2: f32([1, 1, 1, 1]), x3: f32([4, 3, 2, 1]) }]);
  t.same([...out!.y!.data as Float32Array], [0, 2, 4, 6]);
});

t.test('matmul predict calls subgraph 0 and subgraph 1 of one model from a stage', async (t) => {
  const x = new Float32Array(128 * 96).map((_, i) => ((i % 13) - 6) / 8);
  const y = new Float32Array(8 * 96).map((_, i) => ((i % 5) - 2) / 4);
  const [out] = await engine.infer('matmul', 'predict', [
    { x: { dtype: 'float32', shape: [128, 96], data: x }, y: { dtype: 'float32', shape: [8, 96], data: y } },
  ]);
  const w = matmulWeight();
  const expected = new Float64Array(16);
  for (const [m, rows] of [[x, 128], [y, 8]] as const) {
    for (let r = 0; r < rows; r++) for (let k = 0; k < 96; k++) for (let j = 0; j < 16; j++) expected[j]! += m[r * 96 + k]! * w[k * 16 + j]!;
  }
  t.same(out!.z!.shape, [16]);
  const z = out!.z!.data as Float32Array;
  for (let j = 0; j < 16; j++) t.ok(Math.abs(z[j]! - expected[j]!) < 1e-3, `z[${j}] = ${z[j]} ≈ ${expected[j]}`);
});

t.test('describe() lists servables, versions, methods and model-fed input dtypes', async (t) => {
  const add = engine.describe().find((s) => s.name === 'add')!;
  t.same(add.versions, [1]);
  const common = add.methods.find((m) => m.name === 'add_common')!;
  t.same(common.inputs.map((i) => [i.name, i.dtype]), [['x1', 'float32'], ['x2', 'float32']]);
  t.same(common.outputs, ['y']);
  const cast = add.methods.find((m) => m.name === 'add_cast')!;
  t.equal(cast.inputs[0]!.dtype, undefined, 'add_cast inputs feed a function stage: any dtype');
  t.ok(engine.health().ready);
});
