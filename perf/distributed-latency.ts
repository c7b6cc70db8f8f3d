/**
 * What a distributed servable adds to a request: MindSpore's matmul (x float32 [128, 96] @ W
 * [96, 16], negated) served locally (one device actor, the unsplit model) and split by columns
 * over N ranks (agent rank processes on this machine, combined by `concat`), through
 * `engine.infer` in one process, in alternating rounds so that other load hits both alike.
 * The table gives the median round's requests/s and p50/p99 per cell.
 *
 *   npm run build && node dist/perf/distributed-latency.js [--ranks 8] [--rounds 3] [--duration-ms 1000]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startupAgents } from '../actors/agent-startup.js';
import { ServableStartConfig } from '../engine/start-config.js';
import { findPackageRoot } from '../engine/package-root.js';
import { ServingServer } from '../server.js';
import { DIST_COLS, DIST_INNER, DIST_ROWS, columnShardModel, halfWeight, rankTableJson } from '../servables/distributed-models.js';
import { type LoadResult, closedLoop, table } from './harness.js';

const { values } = parseArgs({ options: { ranks: { type: 'string', default: '8' }, rounds: { type: 'string', default: '3' }, 'duration-ms': { type: 'string', default: '1000' } } });
const ranks = Number(values.ranks);
const rounds = Number(values.rounds);
const durationMs = Number(values['duration-ms']);

// the servables live inside the package so that their `import 'actorserve'` resolves to it
const root = findPackageRoot(path.dirname(new URL(import.meta.url).pathname))!;
mkdirSync(path.join(root, 'perf', 'out'), { recursive: true });
const dir = mkdtempSync(path.join(root, 'perf', 'out', 'distributed-'));
const weight = halfWeight();
const shard = (rank: number, of: number) => columnShardModel({ rows: DIST_ROWS, inner: DIST_INNER, cols: DIST_COLS, weight, ranks: of, rank });
mkdirSync(path.join(dir, 'local', '1'), { recursive: true });
writeFileSync(path.join(dir, 'local', 'servable_config.ts'), `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'matmul.onnx', withBatchDim: false });
register.method('predict', { outputs: ['y'] }, (x) => register.addStage(model, [x]));`);
writeFileSync(path.join(dir, 'local', '1', 'matmul.onnx'), shard(0, 1));
mkdirSync(path.join(dir, 'dist'), { recursive: true });
writeFileSync(path.join(dir, 'dist', 'servable_config.ts'), `import { distributed, register } from 'actorserve';
const model = distributed.declareServable({ rankSize: ${ranks}, stageSize: 1, withBatchDim: false, combine: 'concat', concatAxis: 1 });
register.method('predict', { outputs: ['y'] }, (x) => register.addStage(model, [x]));`);
writeFileSync(path.join(dir, 'dist', 'rank_table.json'), rankTableJson(ranks));
const files = Array.from({ length: ranks }, (_, r) => {
  const f = path.join(dir, 'dist', 'model', `device${r}`, 'matmul.onnx');
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, shard(r, ranks));
  return f;
});

const server = new ServingServer();
let address = '';
server.log = (line) => {
  address = /register at (\S+)/.exec(line)?.[1] ?? address;
};
try {
  await server.startServables(new ServableStartConfig({ servableDirectory: dir, servableName: 'local' }));
  const started = server.startDistributedServable(dir, 'dist', { rankTableJsonFile: 'rank_table.json', distributedAddress: '127.0.0.1:0', waitAgentsTimeInSeconds: 120 });
  while (!address) await new Promise((r) => setTimeout(r, 20));
  const agents = await startupAgents({ distributedAddress: address, modelFiles: files, agentStartPort: 7400, log: () => undefined });
  await started;
  const x = { dtype: 'float32' as const, shape: [DIST_ROWS, DIST_INNER], data: new Float32Array(DIST_ROWS * DIST_INNER).fill(1) };
  const cells = ['local', 'dist'].flatMap((name) => [1, 16].map((concurrency) => ({ name, concurrency })));
  const results = new Map<string, LoadResult[]>();
  for (let round = 0; round < rounds; round++) {
    for (const c of cells) {
      const r = await closedLoop(() => server.infer(c.name, 'predict', [{ x }]), { concurrency: c.concurrency, durationMs, warmupMs: 200 });
      const key = `${c.name} c=${c.concurrency}`;
      results.set(key, [...(results.get(key) ?? []), r]);
    }
  }
  const median = (rs: LoadResult[]): LoadResult => [...rs].sort((a, b) => a.p50Ms - b.p50Ms)[Math.floor(rs.length / 2)]!;
  console.log(`matmul [128,96]@[96,16], local (1 device actor) vs ${ranks} ranks; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(
    table(
      ['cell', 'req/s', 'p50 ms', 'p99 ms', 'errors'],
      [...results].map(([key, rs]) => {
        const m = median(rs);
        return [key === `dist c=1` || key === 'dist c=16' ? key.replace('dist', `${ranks} ranks`) : key, m.rps, m.p50Ms, m.p99Ms, m.errors];
      }),
    ),
  );
  await server.stop();
  await agents.closed;
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
