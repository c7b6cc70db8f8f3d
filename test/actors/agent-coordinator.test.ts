// The coordinator's side of the agent link, spoken to over real gRPC on loopback by a client of
// the proto (no rank processes): each refused registration says which rank and which rule;
// agents' start-up refuses bad arguments before forking anything.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { AGENT_PROTOCOL_VERSION, unary } from '../../dist/actors/agent-wire.js';
import type { RegisterRequest, RegisterReply, WireGraphSpec, HeartbeatReply, HeartbeatRequest } from '../../dist/actors/agent-wire.js';
import { startupAgents } from '../../dist/actors/agent-startup.js';
import { twoRankCoordinator } from '../helpers/coordinator.js';

const logs: string[] = [];
const { coordinator, client, address } = await twoRankCoordinator(t, { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 400, predictTimeoutMs: 1000, log: (line) => logs.push(line) });

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
