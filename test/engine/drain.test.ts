// Graceful drain: new requests refused, admitted ones finish, what cannot finish gets an explicit error.
import { connect } from 'node:http2';
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { addModel } from '../../dist/servables/example-models.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('drain');
fx.config(
  'slow',
  `import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
export async function sleepy(x: Tensor): Promise<Tensor> {
  await new Promise((r) => setTimeout(r, (x.data as Float32Array)[0]));
  return x;
}
register.method('run', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [register.addStage(sleepy, [x1]), x2]));`,
);
fx.model('slow', 1, 'add.onnx', addModel({ batch: 'N' }));
t.teardown(() => fx.remove());

async function start() {
  const engine = new ServingServer();
  engine.log = () => {};
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'slow', numParallelWorkers: 4 }));
  return engine;
}
const request = (engine: ServingServer, ms: number) => engine.inferEach('slow', 'run', [{ x1: f32([ms, ms, ms, ms]), x2: f32([1, 1, 1, 1]) }]);

t.test('drain lets admitted requests finish and refuses new ones', async (t) => {
  const engine = await start();
  const admitted = Array.from({ length: 8 }, () => request(engine, 150));
  const drained = engine.drain(10_000);
  await t.rejects(request(engine, 1), { code: 'E_STOPPED', message: /draining/ });
  const results = await Promise.all(admitted);
  t.equal(results.flat().filter((o) => !(o instanceof ServingError)).length, 8, 'all 8 admitted requests answered with outputs');
  t.equal(await drained, 0, 'nothing had to be cut off');
  await t.rejects(engine.infer('slow', 'run', [{ x1: f32([1, 1, 1, 1]), x2: f32([1, 1, 1, 1]) }]), { code: 'E_STOPPED' }, 'still refused after the drain');
});

t.test('work that outlives the drain timeout gets an explicit error, never silence', async (t) => {
  const engine = await start();
  const admitted = Array.from({ length: 4 }, () => request(engine, 1500).catch((e: unknown) => [e]));
  await new Promise((r) => setTimeout(r, 50));
  const cut = await engine.drain(100);
  t.equal(cut, 4, 'four requests were still running at the timeout');
  const results = (await Promise.all(admitted)).flat();
  t.equal(results.length, 4, 'each got an answer');
  for (const r of results) {
    t.ok(r instanceof ServingError, 'an explicit error');
    t.equal((r as ServingError).code, 'E_STOPPED', (r as Error).message);
  }
});

t.test("the gRPC server's close follows the drain timeout, not its own closeTimeoutMs", async (t) => {
  const engine = await start();
  const grpc = await engine.startGrpcServer('127.0.0.1:0', { closeTimeoutMs: 600_000 });
  // A call whose request message never completes: grpc-js's graceful shutdown waits for it.
  const session = connect(`http://${grpc.address}`);
  session.on('error', () => undefined); // the server's cut-off may reset the connection
  t.teardown(() => session.destroy());
  const call = session.request({ ':method': 'POST', ':path': '/mindspore.serving.proto.MSService/Predict', 'content-type': 'application/grpc', te: 'trailers' });
  call.on('error', () => undefined); // the cut-off resets it
  call.write(Buffer.from([0, 0, 0, 0, 100, 1, 2])); // a 100-byte message header, 2 bytes of it
  await new Promise((r) => setTimeout(r, 200));
  const guard = new Promise<string>((r) => setTimeout(() => r('still closing'), 20_000).unref());
  const outcome = await Promise.race([engine.drain(100).then(() => 'drained'), guard]);
  t.equal(outcome, 'drained', 'a 100 ms drain ends though the call never completes and closeTimeoutMs is 600 s');
});
