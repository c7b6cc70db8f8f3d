// Declared method inputs (register.method(name, { inputs: [{ name, dtype, shape }] })) over REST,
// gRPC and the library API: JSON integers and typed values of another numeric dtype (float16,
// int64, bool, ...) become the declared dtype before a stage function sees them (one conversion
// in the runtime, native/dtype-cast.ts), a value, dtype or shape that does not fit is a client
// error per instance, an input that is not declared keeps the model's rules, a stage that throws
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
export function echo(x: Tensor): Tensor {
  return x;
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
register.method('count', { inputs: [{ name: 'n', dtype: 'int32', shape: [-1] }], outputs: ['y'] }, (n) => register.addStage(echo, [n]));
register.method('flag', { inputs: [{ name: 'b', dtype: 'bool', shape: [-1] }], outputs: ['y'] }, (b) => register.addStage(echo, [b]));
register.method('label', { inputs: [{ name: 's', dtype: 'string' }], outputs: ['y'] }, (s) => register.addStage(echo, [s]));
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

t.test('gRPC: typed values are converted to the declared dtype, checked per instance; stage rejections are INVALID_ARGUMENT', async (t) => {
  const client = new Client(`127.0.0.1:${grpc.port}`, 'typed', 'norm');
  t.teardown(() => client.close());
  const outcomes = await client.inferEach([
    { x: { dtype: 'float32', shape: [4], data: Float32Array.of(1, 1, 2, 0) } },
    { x: { dtype: 'int32', shape: [4], data: Int32Array.of(1, 1, 2, 0) } },
    { x: { dtype: 'float16', shape: [4], data: Uint16Array.of(0x3c00, 0x3c00, 0x4000, 0) } }, // 1, 1, 2, 0
    { x: { dtype: 'int64', shape: [4], data: BigInt64Array.of(1n, 1n, 2n, 0n) } },
    { x: { dtype: 'bool', shape: [4], data: Uint8Array.of(1, 1, 0, 0) } },
    { x: { dtype: 'float64', shape: [4], data: Float64Array.of(1, 1, 2, 0) } },
    { x: { dtype: 'float32', shape: [2], data: Float32Array.of(1, 1) } },
    { x: { dtype: 'float32', shape: [4], data: Float32Array.of(-1, 1, 2, 0) } },
    { x: { dtype: 'string', shape: [4], data: ['1', '1', '2', '0'].map((v) => Buffer.from(v)) } },
    { x: { dtype: 'float64', shape: [4], data: Float64Array.of(1, 1e300, 2, 0) } },
    { x: { dtype: 'int16', shape: [3], data: Int16Array.of(1, 1, 2) } },
  ]);
  const values = (k: number): number[] => {
    const o = outcomes[k];
    if (!o || o instanceof ServingError) throw new Error(`instance ${k} failed: ${o?.message}`);
    t.equal(o.y!.dtype, 'float32', `instance ${k}: the stage got float32`);
    return Array.from(o.y!.data as Float32Array);
  };
  t.same(values(0), [0.25, 0.25, 0.5, 0]);
  t.same(values(1), [0.25, 0.25, 0.5, 0], 'int32 converted');
  t.same(values(2), [0.25, 0.25, 0.5, 0], 'float16 converted');
  t.same(values(3), [0.25, 0.25, 0.5, 0], 'int64 converted');
  t.same(values(4), [0.5, 0.5, 0, 0], 'bool converted (1 and 0)');
  t.same(values(5), [0.25, 0.25, 0.5, 0], 'float64 converted');
  t.match(outcomes[6], { code: 'E_INVALID_SHAPE', message: /takes shape \[4\], got \[2\]/ });
  t.match(outcomes[7], { code: 'E_INVALID_ARGUMENT', message: /must not hold negative/ });
  t.match(outcomes[8], { code: 'E_INVALID_DTYPE', message: /^method 'norm' input 'x' takes float32, got string$/ }, 'strings never become numbers');
  t.match(outcomes[9], { code: 'E_INVALID_ARGUMENT', message: /^method 'norm' input 'x': element \[1\] \(1e\+300\) is out of the float32 range/ }, 'no overflow to Infinity');
  t.match(outcomes[10], { code: 'E_INVALID_SHAPE', message: /takes shape \[4\], got \[3\]/ }, 'a converted dtype still has its shape checked');
  for (const o of outcomes.slice(6)) t.equal((o as ServingError).grpcStatus, 3, 'INVALID_ARGUMENT');
});

t.test('gRPC: into a declared integer dtype only integers in range convert; nothing converts to bool', async (t) => {
  const count = new Client(`127.0.0.1:${grpc.port}`, 'typed', 'count');
  const flag = new Client(`127.0.0.1:${grpc.port}`, 'typed', 'flag');
  t.teardown(() => {
    count.close();
    flag.close();
  });
  const outcomes = await count.inferEach([
    { n: { dtype: 'float32', shape: [3], data: Float32Array.of(2, -7, 65504) } },
    { n: { dtype: 'uint64', shape: [2], data: BigUint64Array.of(5n, 2n ** 31n - 1n) } },
    { n: { dtype: 'float64', shape: [2], data: Float64Array.of(1, 1.5) } },
    { n: { dtype: 'int64', shape: [2], data: BigInt64Array.of(0n, 2n ** 31n) } },
    { n: { dtype: 'float32', shape: [1], data: Float32Array.of(NaN) } },
  ]);
  const y = (k: number): [string, number[]] => {
    const o = outcomes[k];
    if (!o || o instanceof ServingError) throw new Error(`instance ${k} failed: ${o?.message}`);
    return [o.y!.dtype, Array.from(o.y!.data as Int32Array)];
  };
  t.same(y(0), ['int32', [2, -7, 65504]]);
  t.same(y(1), ['int32', [5, 2 ** 31 - 1]]);
  t.match(outcomes[2], { code: 'E_INVALID_DTYPE', message: /^method 'count' input 'n' takes int32, but element \[1\] is 1\.5, not an integer$/ });
  t.match(outcomes[3], { code: 'E_INVALID_ARGUMENT', message: /^method 'count' input 'n': element \[1\] \(2147483648\) is out of the int32 range \[-2147483648, 2147483647\]$/ });
  t.match(outcomes[4], { code: 'E_INVALID_DTYPE', message: /is NaN, not an integer/ });
  // one instance, one error: MindSpore's reply rules make it the request's error
  await t.rejects(flag.inferEach([{ b: { dtype: 'int32', shape: [2], data: Int32Array.of(0, 1) } }]), {
    code: 'E_INVALID_DTYPE',
    message: /^method 'flag' input 'b' takes bool, got int32$/,
  });
  const [bools] = await flag.infer([{ b: { dtype: 'bool', shape: [2], data: Uint8Array.of(0, 1) } }]);
  t.same(Array.from(bools!.y!.data as Uint8Array), [0, 1], 'bool stays bool');
});

t.test('REST: typed values (b64 float16 and int32, bools) are converted to the declared dtype too', async (t) => {
  const b64 = (data: ArrayBufferView, type: string): string => JSON.stringify({ b64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'), type, shape: [4] });
  const fp16 = await post('norm', `{"instances":[{"x":${b64(Uint16Array.of(0x4200, 0, 0, 0x3c00), 'fp16')}}]}`); // 3, 0, 0, 1
  t.same([fp16.status, fp16.json], [200, { instances: [{ y: [0.75, 0, 0, 0.25] }] }], fp16.text);
  const int32 = await post('norm', `{"instances":[{"x":${b64(Int32Array.of(3, 0, 0, 1), 'int32')}}]}`);
  t.same([int32.status, int32.json], [200, { instances: [{ y: [0.75, 0, 0, 0.25] }] }], int32.text);
  const bools = await post('norm', '{"instances":[{"x":[true,true,false,false]}]}');
  t.same([bools.status, bools.json], [200, { instances: [{ y: [0.5, 0.5, 0, 0] }] }], bools.text);
  const floats = await post('count', '{"instances":[{"n":[1.0,2.5]}]}');
  t.equal(floats.status, 400, floats.text);
  t.match(floats.json, { error_msg: /input 'n' takes int32, but element \[1\] is 2\.5, not an integer/ });
  const bytes = await post('norm', `{"instances":[{"x":{"b64":"AAAA"}}]}`);
  t.equal(bytes.status, 400, bytes.text);
  t.match(bytes.json, { error_msg: /takes float32, the b64 object holds bytes/ }, 'bytes never become numbers');
  const numbers = await post('label', '{"instances":[{"s":[1,2]}]}');
  t.equal(numbers.status, 400, numbers.text);
  t.match(numbers.json, { error_msg: /input 's' takes string, got numbers/ }, 'numbers never become strings');
});

t.test('library API: the same conversion; an input that is not declared keeps the model rules', async (t) => {
  const [out] = await engine.infer('typed', 'norm', [{ x: { dtype: 'uint8', shape: [4], data: Uint8Array.of(3, 0, 0, 1) } }]);
  t.same([out!.y!.dtype, Array.from(out!.y!.data as Float32Array)], ['float32', [0.75, 0, 0, 0.25]]);
  const outcomes = await engine.lookup('typed', 'add_typed').inferEach([
    { x1: { dtype: 'int32', shape: [2, 2], data: Int32Array.of(1, 2, 3, 4) }, x2: { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 1, 1, 1) } },
    { x1: { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }, x2: { dtype: 'int32', shape: [2, 2], data: Int32Array.of(1, 1, 1, 1) } },
  ]);
  const sum = outcomes[0];
  if (!sum || sum instanceof ServingError) throw new Error(`instance 0 failed: ${sum?.message}`);
  t.same(Array.from(sum.y!.data as Float32Array), [2, 3, 4, 5], 'declared x1 (float32) converted from int32 before the model');
  t.match(outcomes[1], { code: 'E_INVALID_DTYPE', message: /takes float32, got int32/ }, 'x2 is not declared: the model refuses int32, as before');
});
