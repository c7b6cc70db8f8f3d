// Distributed servables without agents: the combine rules, declareServable's rules, the
// bundled example's shards (run directly with ONNX Runtime, combined, against the plain-TS
// product), and distributed.startServable's start-up errors.
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { type RankOutput, combineRankOutputs, declareServable } from '../../dist/engine/distributed.js';
import { collectDeclarations, declareModel, newDeclarations } from '../../dist/engine/register.js';
import { ServingError } from '../../dist/engine/errors.js';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import {
  DIST_COLS,
  DIST_INNER,
  DIST_RANKS,
  DIST_ROWS,
  columnShardModel,
  halfWeight,
  matmulReference,
  patternWeight,
  rankTableJson,
  rowShardModel,
} from '../../dist/servables/distributed-models.js';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { BUNDLED_SERVABLES, servableFixture } from '../helpers/fixtures.js';

const f32 = (dims: number[], values: number[]): RankOutput => ({ dtype: 'float32', dims, data: Float32Array.from(values) });

t.test('combine rules: last, concat on an axis, sum', async (tt) => {
  const a = f32([2, 2], [1, 2, 3, 4]);
  const b = f32([2, 1], [5, 6]);
  tt.equal(combineRankOutputs('last', 0, [a, b], 'y'), b, 'last: the last rank');
  const c1 = combineRankOutputs('concat', 1, [a, b], 'y');
  tt.same(c1.dims, [2, 3]);
  tt.same(Array.from(c1.data as Float32Array), [1, 2, 5, 3, 4, 6], 'concat axis 1 keeps each row together');
  const c0 = combineRankOutputs('concat', 0, [a, f32([1, 2], [7, 8])], 'y');
  tt.same(c0.dims, [3, 2]);
  tt.same(Array.from(c0.data as Float32Array), [1, 2, 3, 4, 7, 8]);
  tt.same(combineRankOutputs('concat', -1, [a, b], 'y').dims, [2, 3], 'a negative axis counts from the end');
  const s = combineRankOutputs('sum', 0, [a, a, a], 'y');
  tt.same(Array.from(s.data as Float32Array), [3, 6, 9, 12]);
  const big = combineRankOutputs('sum', 0, [{ dtype: 'int64', dims: [1], data: BigInt64Array.of(2n ** 40n) }, { dtype: 'int64', dims: [1], data: BigInt64Array.of(1n) }], 'n');
  tt.same(Array.from(big.data as BigInt64Array), [2n ** 40n + 1n], 'int64 sums in bigint');

  tt.throws(() => combineRankOutputs('sum', 0, [a, b], 'y'), /output 'y': rank 1 gives shape \[2, 1\], rank 0 \[2, 2\]; combine 'sum' needs one shape/);
  tt.throws(() => combineRankOutputs('concat', 0, [a, b], 'y'), /rank 1 gives shape \[2, 1\], rank 0 \[2, 2\]; combine 'concat' on axis 0 needs the other dims equal/);
  tt.throws(() => combineRankOutputs('concat', 2, [a, b], 'y'), /concatAxis 2 is outside its 2 dims/);
  tt.throws(() => combineRankOutputs('sum', 0, [a, { dtype: 'float64', dims: [2, 2], data: new Float64Array(4) }], 'y'), /rank 1 gives float64, rank 0 gives float32/);
  tt.throws(() => combineRankOutputs('sum', 0, [{ dtype: 'float16', dims: [1], data: new Uint16Array(1) }], 'h'), /does not add float16/);
});

t.test("declareServable: MindSpore's rules", async (tt) => {
  const declare = (fn: () => void) => collectDeclarations(newDeclarations(), async () => fn());
  await tt.resolves(declare(() => declareServable({ rankSize: 8, stageSize: 1, combine: 'concat', concatAxis: 1 })));
  await tt.rejects(declare(() => declareServable({ rankSize: 6, stageSize: 4 })), /rankSize 6 must be a multiple of stageSize 4/);
  await tt.resolves(declare(() => declareServable({ rankSize: 4, stageSize: 2, combine: 'sum' })), 'a pipeline of 2 stages × 2 ranks');
  await tt.rejects(declare(() => declareServable({ rankSize: 0, stageSize: 1 })), /distributed\.declareServable: rankSize/);
  await tt.rejects(declare(() => declareServable({ rankSize: 2, stageSize: 1, combine: 'summ' as 'sum' })), /combine 'summ' is not supported; use 'last', 'concat' or 'sum'/);
  await tt.rejects(
    declare(() => {
      declareServable({ rankSize: 2, stageSize: 1 });
      declareServable({ rankSize: 2, stageSize: 1 });
    }),
    /already declared distributed; declare it once/,
  );
  await tt.rejects(
    declare(() => {
      declareServable({ rankSize: 2, stageSize: 1 });
      declareModel({ modelFile: 'x.onnx' });
    }),
    /declareModel: the servable is already declared distributed/,
  );
  await tt.rejects(
    declare(() => {
      declareModel({ modelFile: 'x.onnx' });
      declareServable({ rankSize: 2, stageSize: 1 });
    }),
    /already declares local models/,
  );
});

/** Runs each shard model on `x` with ONNX Runtime and returns the outputs in rank order. */
async function runShards(models: readonly Uint8Array[], x: Float32Array, rows: number, inner: number): Promise<RankOutput[]> {
  const outs: RankOutput[] = [];
  for (const bytes of models) {
    const session = await ort.InferenceSession.create(bytes);
    const result = await session.run({ x: new ort.Tensor('float32', x, [rows, inner]) });
    const y = result.y!;
    outs.push({ dtype: 'float32', dims: y.dims.map(Number), data: y.data as Float32Array });
    await session.release();
  }
  return outs;
}

function closeTo(tt: Test, actual: Float32Array, expected: Float32Array, what: string): void {
  const worst = actual.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i]!)), 0);
  tt.equal(actual.length, expected.length, `${what}: size`);
  tt.ok(worst <= 1e-4, `${what}: within 1e-4 of the reference (worst ${worst})`);
}

t.test('shards combine to the full product: column split + concat, row split + sum', async (tt) => {
  const rows = 5;
  const inner = 12;
  const cols = 8;
  const weight = patternWeight(inner, cols);
  const x = Float32Array.from({ length: rows * inner }, (_, i) => Math.sin(i) * 2);
  const reference = matmulReference(x, weight, rows, inner, cols);
  for (const ranks of [2, 4]) {
    const col = await runShards(Array.from({ length: ranks }, (_, rank) => columnShardModel({ rows, inner, cols, weight, ranks, rank })), x, rows, inner);
    const joined = combineRankOutputs('concat', 1, col, 'y');
    tt.same(joined.dims, [rows, cols]);
    closeTo(tt, joined.data as Float32Array, reference, `${ranks} column shards`);
    const row = await runShards(Array.from({ length: ranks }, (_, rank) => rowShardModel({ rows, inner, cols, weight, ranks, rank })), x, rows, inner);
    closeTo(tt, combineRankOutputs('sum', 0, row, 'y').data as Float32Array, reference, `${ranks} row shards`);
  }
});

t.test('the bundled matmul_distributed: 8 generated shards, a client sending ones gets -48', async (tt) => {
  await ensureExampleModels(BUNDLED_SERVABLES);
  const dir = path.join(BUNDLED_SERVABLES, 'matmul_distributed');
  const models = Array.from({ length: DIST_RANKS }, (_, r) => new Uint8Array(readFileSync(path.join(dir, 'model', `device${r}`, 'matmul.onnx'))));
  models.forEach((m, rank) => {
    const expected = columnShardModel({ rows: DIST_ROWS, inner: DIST_INNER, cols: DIST_COLS, weight: halfWeight(), ranks: DIST_RANKS, rank });
    tt.ok(Buffer.from(m).equals(Buffer.from(expected)), `device${rank}/matmul.onnx is the generated shard`);
  });
  const ones = new Float32Array(DIST_ROWS * DIST_INNER).fill(1);
  const y = combineRankOutputs('concat', 1, await runShards(models, ones, DIST_ROWS, DIST_INNER), 'y');
  tt.same(y.dims, [DIST_ROWS, DIST_COLS]);
  tt.ok((y.data as Float32Array).every((v) => v === -48), 'every element is -48');
  tt.equal(readFileSync(path.join(dir, 'rank_table_8pcs.json'), 'utf8'), rankTableJson(8), 'its rank table is the generator’s');
});

t.test('distributed.startServable: errors at start-up', async (tt) => {
  const fx = servableFixture('distributed-start');
  tt.teardown(() => fx.remove());
  fx.config(
    'dist',
    `import { distributed, register } from 'actorserve';
const model = distributed.declareServable({ rankSize: 2, stageSize: 1, withBatchDim: false, combine: 'sum' });
register.method('predict', { outputs: ['y'] }, (x) => register.addStage(model, [x]));`,
  );
  writeFileSync(path.join(fx.dir, 'dist', 'rank_table_2pcs.json'), rankTableJson(2));
  writeFileSync(path.join(fx.dir, 'dist', 'rank_table_3pcs.json'), rankTableJson(3));
  fx.config('local', `import { register } from 'actorserve';\nregister.method('echo', { outputs: ['y'] }, (x) => x);`);
  const server = new ServingServer();
  const logs: string[] = [];
  server.log = (line) => logs.push(line);
  tt.teardown(() => server.stop());
  const start = (name: string, options: Parameters<ServingServer['startDistributedServable']>[2]) => server.startDistributedServable(fx.dir, name, options);

  await tt.rejects(start('local', { rankTableJsonFile: 'rank_table_2pcs.json' }), /servable 'local' is not declared distributed/);
  await tt.rejects(server.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'dist' })), /declared distributed .* start it with distributed\.startServable/);
  await tt.rejects(start('dist', { rankTableJsonFile: 'rank_table_3pcs.json', distributedAddress: '127.0.0.1:0' }), /holds 3 ranks but the servable declares rankSize 2/);
  await tt.rejects(start('dist', { rankTableJsonFile: 'missing.json', distributedAddress: '127.0.0.1:0' }), /cannot read rank table file/);
  await tt.rejects(start('dist', { rankTableJsonFile: 'rank_table_2pcs.json', distributedAdress: 'x' } as never), /did you mean 'distributedAddress'/);
  const err = await start('dist', { rankTableJsonFile: 'rank_table_2pcs.json', distributedAddress: '127.0.0.1:0', waitAgentsTimeInSeconds: 0.3 }).catch((e: unknown) => e);
  tt.ok(err instanceof ServingError && err.code === 'E_LOAD_FAILED', 'agents that never come: E_LOAD_FAILED');
  tt.match((err as Error).message, /agents did not all register within 0\.3 s \(waitAgentsTimeInSeconds\): 0 of 2 ranks ready: rank 0 has not registered yet; rank 1 has not registered yet/);
  tt.same(server.health().servables, [], 'nothing was left loaded');
  tt.ok(logs.some((l) => /waiting for 2 agent ranks to register at 127\.0\.0\.1:\d+/.test(l)), 'the log says where it waits');
});
