// The coordinator's side of the agent link, spoken to over real gRPC on loopback by a client of
// the proto (no rank processes): each refused registration says which rank and which rule;
// agents' start-up refuses bad arguments before forking anything.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { AGENT_PROTOCOL_VERSION, unary } from '../../dist/actors/agent-wire.js';
import type { RegisterRequest, RegisterReply, WireGraphSpec, HeartbeatReply, HeartbeatRequest } from '../../dist/actors/agent-wire.js';
import { startupAgents } from '../../dist/actors/agent-startup.js';
import { testCoordinator } from '../helpers/coordinator.js';

const logs: string[] = [];
const { coordinator, client, address } = await testCoordinator(t, { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 400, predictTimeoutMs: 1000, log: (line) => logs.push(line) });

const graph = (inner: number, outType = 'float32'): WireGraphSpec => ({
  inputs: [{ name: 'x', dtype: 'float32', dims: ['3', String(inner)] }],
  outputs: [{ name: 'y', dtype: outType, dims: ['3', '4'] }],
});
const register = (r: Partial<RegisterRequest>) =>
  unary<RegisterRequest, RegisterReply>(client, 'Register', { protocol_version: AGENT_PROTOCOL_VERSION, rank_id: 0, address: '127.0.0.1:1', pid: 1, graphs: [graph(8)], ...r }, 2000);

/** The call fails with FAILED_PRECONDITION and details matching `re`. */
async function refused(tt: Test, call: Promise<unknown>, re: RegExp, what: string): Promise<void> {
  const err = (await call.then(
    () => undefined,
    (e: unknown) => e,
  )) as grpc.ServiceError | undefined;
  tt.equal(err?.code, grpc.status.FAILED_PRECONDITION, `${what}: FAILED_PRECONDITION`);
  tt.match(err?.details ?? '', re, `${what}: says why`);
}

t.test('registrations: each broken rule is refused naming the rank', async (tt) => {
  await refused(tt, register({ protocol_version: 99 }), new RegExp(`rank 0 \\(agent at 127\\.0\\.0\\.1:1\\): agent protocol version mismatch: the coordinator speaks version ${AGENT_PROTOCOL_VERSION}, the agent version 99`), 'another protocol version');
  await refused(tt, register({ rank_id: 2 }), /rank id 2 is beyond the rank size 2 \(ranks 0…1\)/, 'a rank beyond the size');
  await refused(tt, register({ graphs: [] }), /registers no graph/, 'no graph');
  await register({});
  tt.equal(coordinator.readyCount, 1);
  await refused(tt, register({ address: '127.0.0.1:2' }), /rank 0 is already registered by the agent at 127\.0\.0\.1:1 \(pid 1\); duplicate rank/, 'a duplicate rank');
  await refused(
    tt,
    register({ rank_id: 1, address: '127.0.0.1:3', graphs: [graph(6)] }),
    /rank 1 \(agent at 127\.0\.0\.1:3\): mismatched shard: graph 0 takes inputs \('x' float32 \[3, 6\]\), rank 0 takes \('x' float32 \[3, 8\]\)/,
    'a shard with other inputs',
  );
  await refused(tt, register({ rank_id: 1, address: '127.0.0.1:3', graphs: [graph(8, 'float64')] }), /graph 0 outputs \(float64\), rank 0 \(float32\); combine 'sum' needs the same outputs/, 'other output dtypes');
  await refused(tt, register({ rank_id: 1, address: '127.0.0.1:3', graphs: [graph(8), graph(8)] }), /loaded 2 graphs, rank 0 1/, 'another graph count');
  tt.notOk(coordinator.allReady);
  tt.match(coordinator.missing(), /1 of 2 ranks ready: rank 1 has not registered yet/);
});

t.test('a pipeline (2 stages × 2 ranks): shards are checked within a stage, stages against each other', async (tt) => {
  const pipe = await testCoordinator(tt, { rankSize: 4, stageSize: 2, heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 60_000, predictTimeoutMs: 1000, log: () => undefined });
  const spec = (input: [string, string, string], output: [string, string, string]): WireGraphSpec => ({
    inputs: [{ name: input[0], dtype: input[1], dims: ['N', input[2]] }],
    outputs: [{ name: output[0], dtype: output[1], dims: ['N', output[2]] }],
  });
  const join = (rank: number, graphs: WireGraphSpec[]) =>
    unary<RegisterRequest, RegisterReply>(pipe.client, 'Register', { protocol_version: AGENT_PROTOCOL_VERSION, rank_id: rank, address: `127.0.0.1:${10 + rank}`, pid: 1, graphs }, 2000);
  await join(0, [spec(['x', 'float32', '8'], ['z', 'float32', '12'])]);
  await join(2, [spec(['z', 'float32', '12'], ['y', 'float32', '4'])]);
  tt.equal(pipe.coordinator.readyCount, 2, 'stage 1 takes other inputs than stage 0: accepted');
  await refused(tt, join(1, [spec(['z', 'float32', '12'], ['z', 'float32', '12'])]), /rank 1 \(agent at 127\.0\.0\.1:11\): mismatched shard: graph 0 takes inputs \('z' float32 \[N, 12\]\), rank 0 takes \('x' float32 \[N, 8\]\)/, 'stage 0 rank 1 unlike rank 0');
  await refused(
    tt,
    join(3, [spec(['z', 'int64', '12'], ['y', 'float32', '4'])]),
    /rank 3 .*: mismatched shard: graph 0 takes inputs \('z' int64 \[N, 12\]\), rank 2 takes/,
    'stage 1 rank 3 unlike rank 2',
  );
  await refused(
    tt,
    join(1, [spec(['x', 'float32', '8'], ['z', 'float64', '12'])]),
    /rank 1 .*: mismatched (shard|stages)/,
    'stage 0 rank 1 giving another dtype',
  );
  tt.notOk(pipe.coordinator.allReady);
});

t.test('a pipeline: a stage must take the previous stage\'s outputs', async (tt) => {
  const pipe = await testCoordinator(tt, { rankSize: 2, stageSize: 2, heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 60_000, predictTimeoutMs: 1000, log: () => undefined });
  const join = (rank: number, input: string, output: string) =>
    unary<RegisterRequest, RegisterReply>(
      pipe.client,
      'Register',
      {
        protocol_version: AGENT_PROTOCOL_VERSION,
        rank_id: rank,
        address: `127.0.0.1:${20 + rank}`,
        pid: 1,
        graphs: [{ inputs: [{ name: 'i', dtype: input, dims: ['2'] }], outputs: [{ name: 'o', dtype: output, dims: ['2'] }] }],
      },
      2000,
    );
  await join(0, 'float32', 'float32');
  await refused(
    tt,
    join(1, 'int64', 'float32'),
    /rank 1 .*: mismatched stages: graph 0 of stage 1 takes inputs \(int64\), stage 0 \(rank 0\) gives outputs \(float32\); a stage takes the previous stage's outputs as its inputs, in order/,
    'stage 1 taking int64 after a float32 stage 0',
  );
  await join(1, 'float32', 'float32');
  tt.ok(pipe.coordinator.allReady, 'matching stages: ready');
});

t.test('heartbeats: a silent rank is lost; an unknown one is told to register again', async (tt) => {
  const beat = (r: Partial<HeartbeatRequest>) => unary<HeartbeatRequest, HeartbeatReply>(client, 'Heartbeat', { rank_id: 0, address: '127.0.0.1:1', session: '', ...r }, 2000);
  const { session } = await register({});
  tt.same(await beat({ session }), { known: true });
  tt.same(await beat({ session: 'another-run' }), { known: false }, 'a rank of another coordinator run is unknown');
  const until = Date.now() + 5000;
  while (coordinator.rankStates()[0]!.state === 'ready' && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  tt.equal(coordinator.rankStates()[0]!.state, 'lost', 'no heartbeat for 400 ms: lost');
  tt.ok(logs.some((l) => /rank 0 \(agent at 127\.0\.0\.1:1, pid 1\) was lost: sent no heartbeat for \d+ ms \(timeout 400 ms\)/.test(l)));
  tt.same(await beat({ session }), { known: false }, 'its next heartbeat is told to register again');
  await register({});
  tt.equal(coordinator.rankStates()[0]!.state, 'ready', 'registered again');
});

t.test('startupAgents refuses bad arguments before starting any rank', async (tt) => {
  const base = { distributedAddress: address, agentStartPort: 45_000, coordinatorRetrySeconds: 1, log: () => undefined };
  await tt.rejects(startupAgents({ ...base, modelFiles: ['a.onnx'] }), /the rank table puts 2 ranks on host '127\.0\.0\.1' \(ranks 0, 1\) but 1 model files are given/);
  await tt.rejects(startupAgents({ ...base, modelFiles: ['/nonexistent/a.onnx', '/nonexistent/b.onnx'] }), /cannot access model file '\/nonexistent\/a\.onnx' of rank 0/);
  await tt.rejects(startupAgents({ ...base, modelFiles: ['a.onnx'], agentIp: '127.0.0.1' }), /agentIp and rankStart must be given together, or neither/);
  await tt.rejects(startupAgents({ ...base, modelFiles: ['a.onnx'], agentIp: '127.0.0.1', rankStart: 2 }), /rankStart 2 must be a rank of the table \(0…1\)/);
  await tt.rejects(startupAgents({ ...base, modelFiles: ['a.onnx'], agentStartPort: 65_529 }), /agentStartPort must be an integer in \[1, 65528\]/);
  await tt.rejects(startupAgents({ ...base, modelFiles: [['a.onnx', 'b.onnx'], 'c.onnx'] }), /every rank needs the same number of model files/);
  await tt.rejects(startupAgents({ ...base, distributedAddress: '127.0.0.1:1', modelFiles: ['a.onnx'] }), /no coordinator answered at 127\.0\.0\.1:1 within 1 s/);
});
