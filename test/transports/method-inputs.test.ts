// Declared method inputs (register.method(name, { inputs: [{ name, dtype, shape }] })) over REST
// and gRPC: JSON integers become the declared dtype before a stage function sees them, a value
// or shape that does not fit is a client error per instance, a stage that throws
// ServingError('E_INVALID_ARGUMENT') is a 400, and any other throw or a malformed returned
// tensor stays 500 E_STAGE_FAILED.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { startRestfulServer, type RestServer } from '../../dist/transports/rest/server.js';
import { startGrpcServer, type GrpcServer } from '../../dist/transports/grpc/server.js';
import { Client } from '../../dist/transports/grpc/client.js';
import { addModel } from '../../dist/servables/example-models.js';
import { servableFixture } from '../helpers/fixtures.js';
import { request } from './rest/fixtures/rest.js';

const CONFIG = `import { register, ServingError, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
export function normalize(x: Tensor): Tensor {
  if (x.dtype !== 'float32') throw new Error('normalize takes float32, got ' + x.dtype);
  const d = x.data as Float32Array;
  if (d.some((v) => v < 0)) throw new ServingError('E_INVALID_ARGUMENT', 'normalize: x must not hold negative values');
  const sum = d.reduce((a, b) => a + b, 0);
  return { dtype: 'float32', shape: [...x.shape], data: d.map((v) => v / sum) };
}
export function malformed(x: Tensor) {
  return { dtype: 'float32', shape: [3], data: new Float32Array(2) };
}
export async function wrongSubgraph(x: Tensor): Promise<Tensor> {
  const [y] = await model.call([x, x], { subgraph: 3 });
  return y!;
}
register.method('wrong_subgraph', { outputs: ['y'] }, (x) => register.addStage(wrongSubgraph, [x]));
register.method('norm', { inputs: [{ name: 'x', dtype: 'float32', shape: [4] }], outputs: ['y'] }, (x) => register.addStage(normalize, [x]));
register.method('norm_any', { inputs: [{ name: 'x', dtype: 'float32', shape: [-1] }], outputs: ['y'] }, (x) => register.addStage(normalize, [x]));
register.method('untyped', { outputs: ['y'] }, (x) => register.addStage(normalize, [x]));
register.method('malformed', { outputs: ['y'] }, (x) => register.addStage(malformed, [x]));
register.method('add_typed', { inputs: [{ name: 'x1', dtype: 'float32', shape: [2, 2] }, { name: 'x2' }], outputs: ['y'] }, (x1, x2) =>
  register.addStage(model, [x1, x2]),
);
`;

const fx = servableFixture('method-inputs');
const engine = new ServingServer();
engine.log = () => {};
let rest: RestServer;
let grpc: GrpcServer;

t.before(async () => {
  fx.config('typed', CONFIG);
  fx.model('typed', 1, 'add.onnx', addModel({ batch: 'N' }));
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'typed', numParallelWorkers: 1 }));
  rest = await startRestfulServer(engine, '127.0.0.1:0');
  grpc = await startGrpcServer(engine, '127.0.0.1:0');
});
t.teardown(async () => {
  await rest?.close();
  await grpc?.close();
  await engine.stop();
  fx.remove();
});

const post = (method: string, body: string) => request({ port: rest.port }, `/model/typed:${method}`, { body });

t.test('describe() and lookup() carry the declared dtype and shape', async (t) => {
  const methods = engine.describe()[0]!.methods;
  t.same(methods.find((m) => m.name === 'norm')!.inputs, [{ name: 'x', dtype: 'float32', dims: [4] }]);
  t.same(methods.find((m) => m.name === 'untyped')!.inputs, [{ name: 'x' }]);
  const add = methods.find((m) => m.name === 'add_typed')!.inputs;
  t.same(add[0], { name: 'x1', dtype: 'float32', dims: [2, 2] });
  t.match(add[1], { name: 'x2', dtype: 'float32' }, 'an undeclared input feeding a model keeps the model dtype');
  t.same(engine.lookup('typed', 'norm').info.inputs, [{ name: 'x', dtype: 'float32', dims: [4] }]);
});

t.test('REST: JSON integers become the declared float32 before the stage runs', async (t) => {
  const r = await post('norm', '{"instances":[{"x":[3,0,0,1]}]}');
  t.equal(r.status, 200, r.text);
  t.same(r.json, { instances: [{ y: [0.75, 0, 0, 0.25] }] });
  const dynamic = await post('norm_any', '{"instances":[{"x":[1,1]}]}');
  t.same([dynamic.status, dynamic.json], [200, { instances: [{ y: [0.5, 0.5] }] }]);
  const model = await post('add_typed', '{"instances":[{"x1":[[1,2],[3,4]],"x2":[[1,1],[1,1]]}]}');
  t.same([model.status, model.json], [200, { instances: [{ y: [[2, 3], [4, 5]] }] }]);
});

t.test('REST: what does not fit the declaration is a 400', async (t) => {
  const strings = await post('norm', '{"instances":[{"x":["a","b","c","d"]}]}');
  t.equal(strings.status, 400, strings.text);
  t.match(strings.json, { error_msg: /input 'x'.*takes float32, got strings/ });
  const shape = await post('norm', '{"instances":[{"x":[1,2,3]}]}');
  t.equal(shape.status, 400, shape.text);
  t.match(shape.json, { error_msg: /method 'norm' input 'x' takes shape \[4\], got \[3\]/ });
  const rank = await post('norm_any', '{"instances":[{"x":[[1,2],[3,4]]}]}');
  t.equal(rank.status, 400, rank.text);
  t.match(rank.json, { error_msg: /takes shape \[-1\], got \[2, 2\]/ });
});

t.test('REST: a stage rejects its input with ServingError(E_INVALID_ARGUMENT): 400 for that instance', async (t) => {
  const r = await post('norm', '{"instances":[{"x":[-1,0,0,0]}]}');
  t.equal(r.status, 400, r.text);
  t.match(r.json, { error_msg: 'normalize: x must not hold negative values' });
  const mixed = await post('norm', '{"instances":[{"x":[1,1,1,1]},{"x":[-1,0,0,0]}]}');
  t.equal(mixed.status, 200, mixed.text);
  t.match(mixed.json, { instances: [{ y: [0.25, 0.25, 0.25, 0.25] }, { error_msg: /must not hold negative/ }] });
});

t.test('REST: other throws and malformed returned tensors stay 500 E_STAGE_FAILED', async (t) => {
  const untyped = await post('untyped', '{"instances":[{"x":[3,0,0,0]}]}');
  t.equal(untyped.status, 500, untyped.text);
  t.match(untyped.json, { error_msg: /Function 'normalize' failed: normalize takes float32, got int32/ });
  const malformed = await post('malformed', '{"instances":[{"x":[1]}]}');
  t.equal(malformed.status, 500, malformed.text);
  t.match(malformed.json, { error_msg: /Function 'malformed' output 0: shape \[3\] needs 3 elements, data has 2/ });
  const call = await post('wrong_subgraph', '{"instances":[{"x":[[1,2],[3,4]]}]}');
  t.equal(call.status, 500, call.text);
  t.match(call.json, { error_msg: /the model has no subgraph 3; it has 1/ });
  const outcomes = await engine.lookup('typed', 'malformed').inferEach([{ x: { dtype: 'float32', shape: [1], data: Float32Array.of(1) } }]);
  t.match(outcomes[0], { code: 'E_STAGE_FAILED' });
});

t.test('gRPC: values are checked against the declaration per instance; stage rejections are INVALID_ARGUMENT', async (t) => {
  const client = new Client(`127.0.0.1:${grpc.port}`, 'typed', 'norm');
  t.teardown(() => client.close());
  const outcomes = await client.inferEach([
    { x: { dtype: 'float32', shape: [4], data: Float32Array.of(1, 1, 2, 0) } },
    { x: { dtype: 'int32', shape: [4], data: Int32Array.of(1, 1, 2, 0) } },
    { x: { dtype: 'float32', shape: [2], data: Float32Array.of(1, 1) } },
    { x: { dtype: 'float32', shape: [4], data: Float32Array.of(-1, 1, 2, 0) } },
  ]);
  const first = outcomes[0];
  if (!first || first instanceof ServingError) throw new Error(`instance 0 failed: ${first?.message}`);
  t.same(Array.from(first.y!.data as Float32Array), [0.25, 0.25, 0.5, 0]);
  t.match(outcomes[1], { code: 'E_INVALID_DTYPE', message: /method 'norm' input 'x' takes float32, got int32/ });
  t.match(outcomes[2], { code: 'E_INVALID_SHAPE', message: /takes shape \[4\], got \[2\]/ });
  t.match(outcomes[3], { code: 'E_INVALID_ARGUMENT', message: /must not hold negative/ });
  for (const o of outcomes.slice(1)) t.equal((o as ServingError).grpcStatus, 3, 'INVALID_ARGUMENT');
});
