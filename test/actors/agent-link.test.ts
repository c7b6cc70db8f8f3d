// The batch stream between the coordinator and its ranks (PredictStream, actors/agent-link.ts),
// over real gRPC on loopback: two Agent services in this process, written from the proto, that
// the test steers (answer at once, hold replies and answer them in reverse order, stay silent,
// end the stream). Replies are matched to batches by id whatever their order; a rank that does
// not answer within predictTimeoutMs is lost alone; a stream the rank ends loses the rank.
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { AGENT_PROTOCOL_VERSION, CHANNEL_OPTIONS, agentProtos, unary } from '../../dist/actors/agent-wire.js';
import type { PredictReply, PredictRequest, RegisterReply, RegisterRequest, WireGraphSpec } from '../../dist/actors/agent-wire.js';
import type { BatchInput, BatchOutput } from '../../dist/actors/device.js';
import { ServingError } from '../../dist/engine/errors.js';
import { testCoordinator } from '../helpers/coordinator.js';

type Mode = 'answer' | 'hold2' | 'silent' | 'end';

/** An Agent service: rank `rank` answers y = x * (rank + 1) (shape [1, 2]) as its mode says. */
async function fakeAgent(rank: number) {
  const state = { mode: 'answer' as Mode, requests: 0 };
  const held: { call: grpc.ServerDuplexStream<PredictRequest, PredictReply>; reply: PredictReply }[] = [];
  const server = new grpc.Server(CHANNEL_OPTIONS);
  server.addService(agentProtos().agent, {
    PredictStream: (call: grpc.ServerDuplexStream<PredictRequest, PredictReply>) => {
      call.on('data', (req: PredictRequest) => {
        state.requests++;
        const x = req.inputs[0]!.data;
        const xs = new Float32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
        const y = Float32Array.from(xs, (v) => v * (rank + 1));
        const reply: PredictReply = { outputs: [{ dtype: 'float32', dims: [1, 2], data: new Uint8Array(y.buffer) }], error: '', id: req.id };
        if (state.mode === 'answer') call.write(reply);
        else if (state.mode === 'end') call.end();
        else if (state.mode === 'hold2') {
          held.push({ call, reply });
          if (held.length === 2) for (const h of held.splice(0).reverse()) h.call.write(h.reply);
        }
      });
      call.on('error', () => undefined);
    },
    Exit: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, {}),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { state, address: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

const agents = [await fakeAgent(0), await fakeAgent(1)];
t.teardown(() => agents.forEach((a) => a.stop()));
const { coordinator, client } = await testCoordinator(t, { heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 60_000, predictTimeoutMs: 400, log: () => undefined });
const graph: WireGraphSpec = { inputs: [{ name: 'x', dtype: 'float32', dims: ['1', '2'] }], outputs: [{ name: 'y', dtype: 'float32', dims: ['1', '2'] }] };
const register = (rank: number) =>
  unary<RegisterRequest, RegisterReply>(client, 'Register', { protocol_version: AGENT_PROTOCOL_VERSION, rank_id: rank, address: agents[rank]!.address, pid: 1, graphs: [graph] }, 2000);
await register(0);
await register(1);
coordinator.graphs();

const input = (a: number, b: number): BatchInput[] => [{ dtype: 'float32', dims: [1, 2], parts: [Float32Array.of(a, b)] }];
const values = async (p: Promise<BatchOutput[]>): Promise<number[]> => {
  const [o] = await p;
  return o && 'data' in o ? Array.from(o.data as Float32Array) : [];
};

t.test('replies are matched to their batch by id, in whatever order they come', async (tt) => {
  tt.same(await values(coordinator.predict(0, input(1, 2))), [3, 6], 'rank 0 gives x, rank 1 gives 2x: summed 3x');
  agents[1]!.state.mode = 'hold2'; // rank 1 answers the second batch before the first
  const [a, b] = await Promise.all([values(coordinator.predict(0, input(1, 1))), values(coordinator.predict(0, input(10, 20)))]);
  tt.same(a, [3, 3], 'the first batch got its own sum');
  tt.same(b, [30, 60], 'the second batch got its own sum');
  agents[1]!.state.mode = 'answer';
});

t.test('a rank silent past predictTimeoutMs is lost alone; the batch fails naming it', async (tt) => {
  agents[1]!.state.mode = 'silent';
  const err = await coordinator.predict(0, input(1, 1)).then(
    () => undefined,
    (e: unknown) => e as ServingError,
  );
  tt.ok(err instanceof ServingError, 'the batch fails');
  tt.equal(err?.code, 'E_ACTOR_DIED');
  tt.match(err?.message ?? '', /rank 1 \(agent at 127\.0\.0\.1:\d+\) did not answer a batch within 400 ms/);
  tt.same(
    coordinator.rankStates().map((r) => r.state),
    ['ready', 'lost'],
    'only the silent rank is lost',
  );
  const refused = await coordinator.predict(0, input(1, 1)).catch((e: unknown) => e as ServingError);
  tt.match((refused as ServingError).message, /is not available: 1 of 2 ranks ready: rank 1 .* was lost: did not answer a batch within 400 ms/, 'new batches are refused');
  agents[1]!.state.mode = 'answer';
  await register(1);
  tt.same(await values(coordinator.predict(0, input(2, 2))), [6, 6], 'registered again: a new stream serves');
});

t.test('a rank that ends its stream is lost at once', async (tt) => {
  agents[0]!.state.mode = 'end';
  const err = await coordinator.predict(0, input(1, 1)).catch((e: unknown) => e as ServingError);
  tt.match((err as ServingError).message, /rank 0 \(agent at 127\.0\.0\.1:\d+\) failed a batch: it ended its batch stream/);
  tt.equal(coordinator.rankStates()[0]!.state, 'lost');
  tt.notOk(coordinator.allReady, 'the servable is not available');
});
