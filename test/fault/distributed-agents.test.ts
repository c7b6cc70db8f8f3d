// Distributed servables end to end, as users run them: the coordinator (distributed.startServable
// in this process, with the REST and gRPC transports) and the agents (`actorserve agent` child
// processes, each forking one rank process per rank that loads its shard with ONNX Runtime), on
// loopback ports. Values are checked against the plain-TS product; then a rank is killed with
// SIGKILL mid-traffic (explicit errors, not ready, fast refusals, back once it re-registered) and
// one is stopped with SIGSTOP (a batch deadline and the heartbeat notice it; SIGCONT heals it).
import t from 'tap';
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ServingServer } from '../../dist/server.js';
import { ServingError } from '../../dist/engine/errors.js';
import { Client } from '../../dist/transports/grpc/client.js';
import { columnShardModel, matmulReference, patternWeight, rankTableJson, rowShardModel } from '../../dist/servables/distributed-models.js';
import { servableFixture } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';

const INNER = 8;
const COLS = 4;
const ROWS = 3; // mmrow's fixed rows (no batch dim)
const RANKS = 2;
const weight = patternWeight(INNER, COLS);

const fx = servableFixture('distributed');
t.teardown(() => fx.remove());

// mmcol: instances are rows x [8] batched along N; W split by columns over 2 ranks, joined on axis 1.
fx.config(
  'mmcol',
  `import { distributed, register } from 'actorserve';
const model = distributed.declareServable({ rankSize: ${RANKS}, stageSize: 1, combine: 'concat', concatAxis: 1, maxBatchSize: 8 });
register.method('predict', { outputs: ['y'] }, (x) => register.addStage(model, [x]));`,
);
// mmrow: one [3, 8] matrix per instance (no batch dim); W split by rows, partial products summed.
fx.config(
  'mmrow',
  `import { distributed, register } from 'actorserve';
const model = distributed.declareServable({ rankSize: ${RANKS}, stageSize: 1, withBatchDim: false, combine: 'sum' });
register.method('predict', { outputs: ['y'] }, (x) => register.addStage(model, [x]));`,
);
const files = (servable: string, build: (rank: number) => Uint8Array): string[] =>
  Array.from({ length: RANKS }, (_, rank) => {
    const file = path.join(fx.dir, servable, 'model', `device${rank}`, 'matmul.onnx');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, build(rank));
    return file;
  });
const colFiles = files('mmcol', (rank) => columnShardModel({ rows: 'N', inner: INNER, cols: COLS, weight, ranks: RANKS, rank }));
const rowFiles = files('mmrow', (rank) => rowShardModel({ rows: ROWS, inner: INNER, cols: COLS, weight, ranks: RANKS, rank }));
for (const s of ['mmcol', 'mmrow']) writeFileSync(path.join(fx.dir, s, 'rank_table.json'), rankTableJson(RANKS));

function row(k: number): Float32Array {
  return Float32Array.from({ length: INNER }, (_, i) => Math.sin(k * 13 + i) * 3);
}

function near(actual: ArrayLike<number>, expected: ArrayLike<number>): boolean {
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < actual.length; i++) if (Math.abs(actual[i]! - expected[i]!) > 1e-4) return false;
  return true;
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const server = new ServingServer();
const logs: string[] = [];
server.log = (line) => logs.push(line);
t.teardown(() => server.stop());

/** Starts a distributed servable and its agents (`actorserve agent`); resolves with the agent CLI and its rank pids. */
async function startWithAgents(name: string, modelFiles: string[]) {
  const started = server.startDistributedServable(fx.dir, name, {
    rankTableJsonFile: 'rank_table.json',
    distributedAddress: '127.0.0.1:0',
    waitAgentsTimeInSeconds: 60,
    heartbeatIntervalMs: 200,
    heartbeatTimeoutMs: 1500,
    predictTimeoutMs: 1500,
    defaultDeadlineMs: 10_000,
  });
  started.catch(() => undefined);
  const re = new RegExp(`servable '${name}': waiting for ${RANKS} agent ranks to register at (\\S+)`);
  await until(() => logs.some((l) => re.test(l)), 30_000, `${name}'s coordinator`);
  const address = re.exec(logs.find((l) => re.test(l))!)![1]!;
  const agent = runCli(['agent', '--distributed-address', address, '--model-files', modelFiles.join(','), '--agent-start-port', String(await freePorts(RANKS)), '--coordinator-retry-seconds', '5']);
  t.teardown(async () => {
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGTERM');
    await agent.exited;
  });
  await started;
  const line = await agent.waitFor(/ranks registered: (.*)/, 30_000);
  const pids = [...line[1]!.matchAll(/rank (\d+) on \S+ \(pid (\d+)\)/g)].map((m) => Number(m[2]));
  return { agent, pids };
}

// both at once: a servable waiting for its agents does not hold up other starts
const [col, rowAgents] = await Promise.all([startWithAgents('mmcol', colFiles), startWithAgents('mmrow', rowFiles)]);
const rest = await server.startRestfulServer('127.0.0.1:0');
const grpcServer = await server.startGrpcServer('127.0.0.1:0');

t.test('the servables answer over the engine API, REST and gRPC with the full product', async (tt) => {
  const xs = [0, 1, 2, 3, 4].map(row);
  // engine API: five instances batched together on the ranks
  const outs = await server.infer('mmcol', 'predict', xs.map((x) => ({ x: { dtype: 'float32' as const, shape: [INNER], data: x } })));
  outs.forEach((o, i) => {
    tt.same(o.y!.shape, [COLS]);
    tt.ok(near(o.y!.data as Float32Array, matmulReference(xs[i]!, weight, 1, INNER, COLS)), `mmcol instance ${i} = -(x @ W)`);
  });

  const body = JSON.stringify({ instances: xs.slice(0, 2).map((x) => ({ x: Array.from(x) })) });
  const res = await fetch(`http://127.0.0.1:${rest.port}/model/mmcol:predict`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  tt.equal(res.status, 200);
  const json = (await res.json()) as { instances: { y: number[] }[] };
  json.instances.forEach((inst, i) => tt.ok(near(inst.y, matmulReference(xs[i]!, weight, 1, INNER, COLS)), `REST instance ${i}`));

  const client = new Client(`127.0.0.1:${grpcServer.port}`, 'mmrow', 'predict');
  tt.teardown(() => client.close());
  const m = Float32Array.from({ length: ROWS * INNER }, (_, i) => Math.cos(i) * 2);
  const [g] = await client.infer([{ x: { dtype: 'float32', shape: [ROWS, INNER], data: m } }]);
  tt.same(g!.y!.shape, [ROWS, COLS]);
  tt.ok(near(g!.y!.data as Float32Array, matmulReference(m, weight, ROWS, INNER, COLS)), 'gRPC: row shards summed = -(x @ W)');

  const ready = await fetch(`http://127.0.0.1:${rest.port}/readyz`);
  tt.equal(ready.status, 200, '/readyz: ready');
});

t.test('a rank killed with SIGKILL mid-traffic: explicit errors, not ready, fast refusals, then it heals', async (tt) => {
  const x = row(7);
  const expected = matmulReference(x, weight, 1, INNER, COLS);
  const one = () => server.infer('mmcol', 'predict', [{ x: { dtype: 'float32' as const, shape: [INNER], data: x } }]);
  const outcomes: string[] = []; // 'ok', 'wrong values' or an error code
  let killed = false;
  let firstError: ServingError | undefined;
  // 8 clients in a loop, bounded in count and time, until a request fails after the kill
  const loop = async () => {
    for (let i = 0; i < 400 && !(killed && firstError); i++) {
      try {
        const [o] = await one();
        if (!near(o!.y!.data as Float32Array, expected)) outcomes.push('wrong values');
        else outcomes.push('ok');
      } catch (err) {
        outcomes.push((err as ServingError).code);
        if (killed) firstError ??= err as ServingError;
      }
    }
  };
  const loops = Array.from({ length: 8 }, loop);
  await until(() => outcomes.length >= 20, 20_000, 'traffic');
  process.kill(col.pids[1]!, 'SIGKILL');
  killed = true;
  await Promise.all(loops);
  tt.ok(firstError, 'a request failed after the kill');
  tt.notOk(outcomes.includes('wrong values'), 'no request got wrong values');
  tt.ok(
    outcomes.every((o) => o === 'ok' || o === 'E_ACTOR_DIED' || o === 'E_UNAVAILABLE'),
    `every request either succeeded or failed with E_ACTOR_DIED/E_UNAVAILABLE (${[...new Set(outcomes)].join(', ')})`,
  );
  tt.match(firstError!.message, /rank 1 \(agent at 127\.0\.0\.1:\d+\)/, 'the error names the rank');

  // until the rank is back: not ready, and new requests refused at once, naming the rank
  const health = server.health().servables.find((s) => s.name === 'mmcol')!;
  if (!health.ready) {
    const refused = await one().catch((err: unknown) => err as ServingError);
    if (refused instanceof ServingError) {
      tt.equal(refused.code, 'E_UNAVAILABLE', 'a new request is refused with E_UNAVAILABLE');
      tt.match(refused.message, /distributed servable 'mmcol' is not available: 1 of 2 ranks ready: rank 1 \(agent at .*\) was lost/);
    }
    const readyz = await fetch(`http://127.0.0.1:${rest.port}/readyz`);
    if (!server.health().ready) tt.equal(readyz.status, 503, '/readyz: 503 while a rank is missing');
  }
  tt.ok(logs.some((l) => /servable 'mmcol': rank 1 .* was lost/.test(l)), 'the coordinator logged the lost rank');

  // the agent's start-up process starts rank 1 again; it registers; the servable serves again
  await until(() => server.health().servables.find((s) => s.name === 'mmcol')!.ready, 30_000, 'mmcol ready again');
  const [after] = await one();
  tt.ok(near(after!.y!.data as Float32Array, expected), 'served again with the right values, nothing else restarted');
  await col.agent.waitFor(/rank 1 .*killed by SIGKILL; starting it again/, 1000);
  tt.ok(server.runtime('mmcol').stats.restarts >= 1, 'the re-registration is counted as a restart');
});

t.test('a hung rank (SIGSTOP): its batch fails at the predict deadline, SIGCONT heals it', async (tt) => {
  const m = Float32Array.from({ length: ROWS * INNER }, (_, i) => i / 10);
  const expected = matmulReference(m, weight, ROWS, INNER, COLS);
  const one = () => server.infer('mmrow', 'predict', [{ x: { dtype: 'float32' as const, shape: [ROWS, INNER], data: m } }]);
  const victim = rowAgents.pids[0]!;
  process.kill(victim, 'SIGSTOP');
  let continued = false;
  tt.teardown(() => {
    if (!continued) process.kill(victim, 'SIGCONT');
  });
  const err = await one().then(
    () => undefined,
    (e: unknown) => e as ServingError,
  );
  tt.ok(err instanceof ServingError, 'the request fails instead of hanging');
  tt.match(err?.message ?? '', /rank 0 \(agent at [^)]*\) (was lost: )?(did not answer a batch within 1500 ms|sent no heartbeat)/, 'the error says which rank hung');
  tt.notOk(server.health().servables.find((s) => s.name === 'mmrow')!.ready, 'not ready while the rank is stopped');
  process.kill(victim, 'SIGCONT');
  continued = true;
  // its next heartbeat is answered "unknown": it registers again
  await until(() => server.health().servables.find((s) => s.name === 'mmrow')!.ready, 20_000, 'mmrow ready again');
  const [o] = await one();
  tt.ok(near(o!.y!.data as Float32Array, expected), 'served again after SIGCONT');
});

t.test('stopping the server tells the agents to exit', async (tt) => {
  await server.stop();
  tt.equal(await col.agent.exited, 0, 'mmcol agent exited 0');
  tt.equal(await rowAgents.agent.exited, 0, 'mmrow agent exited 0');
  tt.match(col.agent.output(), /all ranks ended: the coordinator stopped the servable/);
});
