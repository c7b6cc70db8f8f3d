// A 2-stage pipeline with real agent rank processes: the bundled `mlp_pipeline` (an MLP split
// into 2 stages × 2 tensor-parallel ranks, `combine: 'sum'`) served by distributed.startServable,
// its 4 ranks started by distributed.startupAgents (one process each, ONNX Runtime in each), and
// its answers checked against the unsplit model run directly with ONNX Runtime (within 1e-5),
// for a batch and for concurrent requests (several batches in the pipeline at once).
import t from 'tap';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ServingServer } from '../../dist/server.js';
import { startupAgents } from '../../dist/actors/agent-startup.js';
import { PIPE_DIMS, PIPE_RANKS_PER_STAGE, PIPE_STAGES } from '../../dist/servables/distributed-models.js';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { BUNDLED_SERVABLES } from '../helpers/fixtures.js';
import { freePorts } from '../helpers/ports.js';

const [IN, , , , OUT] = PIPE_DIMS;
const RANKS = PIPE_STAGES * PIPE_RANKS_PER_STAGE;
await ensureExampleModels(BUNDLED_SERVABLES);
const dir = path.join(BUNDLED_SERVABLES, 'mlp_pipeline');

const server = new ServingServer();
let address = '';
server.log = (line) => {
  address = /servable 'mlp_pipeline': waiting for \d+ agent ranks to register at (\S+)/.exec(line)?.[1] ?? address;
};
t.teardown(() => server.stop());
const started = server.startDistributedServable(BUNDLED_SERVABLES, 'mlp_pipeline', {
  rankTableJsonFile: 'rank_table_4pcs.json',
  distributedAddress: '127.0.0.1:0',
  waitAgentsTimeInSeconds: 60,
});
started.catch(() => undefined);
for (let i = 0; i < 1500 && !address; i++) await new Promise((r) => setTimeout(r, 20));
const agents = await startupAgents({
  distributedAddress: address,
  modelFiles: Array.from({ length: RANKS }, (_, r) => path.join(dir, 'model', `device${r}`, 'mlp.onnx')),
  agentStartPort: await freePorts(RANKS),
  log: () => undefined,
});
t.teardown(() => agents.stop());
await started;

const unsplit = await ort.InferenceSession.create(path.join(dir, 'model', 'unsplit.onnx'));
t.teardown(() => unsplit.release());
const instance = (k: number): Float32Array => Float32Array.from({ length: IN }, (_, i) => Math.sin(k * 7 + i) * 2);
async function reference(xs: Float32Array[]): Promise<Float32Array> {
  const x = new Float32Array(xs.length * IN);
  xs.forEach((v, k) => x.set(v, k * IN));
  const out = await unsplit.run({ x: new ort.Tensor('float32', x, [xs.length, IN]) });
  return out['y']!.data as Float32Array;
}
const maxDiff = (a: Float32Array, b: ArrayLike<number>): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), a.length === b.length ? 0 : Infinity);

t.test('a batch through 2 stages × 2 ranks equals the unsplit model within 1e-5', async (tt) => {
  const xs = [0, 1, 2, 3, 4, 5].map(instance);
  const outs = await server.infer('mlp_pipeline', 'predict', xs.map((x) => ({ x: { dtype: 'float32' as const, shape: [IN], data: x } })));
  const expected = await reference(xs);
  outs.forEach((o, k) => {
    tt.same(o.y!.shape, [OUT], `instance ${k}: y [${OUT}]`);
    const diff = maxDiff(o.y!.data as Float32Array, expected.subarray(k * OUT, (k + 1) * OUT));
    tt.ok(diff <= 1e-5, `instance ${k}: max |distributed - unsplit| = ${diff.toExponential(2)} ≤ 1e-5`);
  });
  tt.ok(
    outs.some((o) => (o.y!.data as Float32Array).some((v) => v !== 0)),
    'the outputs are not all zero',
  );
});

t.test('concurrent requests: several batches in the pipeline, each gets its own answer', async (tt) => {
  const ks = Array.from({ length: 24 }, (_, k) => k + 10);
  const outs = await Promise.all(ks.map((k) => server.infer('mlp_pipeline', 'predict', [{ x: { dtype: 'float32' as const, shape: [IN], data: instance(k) } }])));
  const expected = await reference(ks.map(instance));
  const worst = Math.max(...outs.map(([o], i) => maxDiff(o!.y!.data as Float32Array, expected.subarray(i * OUT, (i + 1) * OUT))));
  tt.ok(worst <= 1e-5, `every request matches the unsplit model (worst ${worst.toExponential(2)})`);
  tt.ok(server.health().servables.find((s) => s.name === 'mlp_pipeline')?.ready, 'ready');
});
