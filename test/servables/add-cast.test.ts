// The bundled `add` servable's add_cast (servables/add/servable_config.ts) as MindSpore's example
// behaves: every numeric dtype, float16 and bool included, is cast to float32 before the add,
// over REST (b64 of each dtype) and gRPC (typed tensors); a string or bytes input is the
// client's error (400 / INVALID_ARGUMENT, E_INVALID_ARGUMENT) with a message saying what
// add_cast takes, and the server keeps serving.
import t from 'tap';
import { startRestfulServer, type RestServer } from '../../dist/transports/rest/server.js';
import { startGrpcServer, type GrpcServer } from '../../dist/transports/grpc/server.js';
import { Client } from '../../dist/transports/grpc/client.js';
import { ServingError } from '../../dist/engine/errors.js';
import { TYPED_ARRAY, type NumericDType } from '../../dist/engine/dtypes.js';
import type { Tensor } from '../../dist/engine/tensor.js';
import { request, startEngine, type EngineFixture } from '../transports/rest/fixtures/rest.js';

let env: EngineFixture;
let rest: RestServer;
let grpc: GrpcServer;
let client: Client;

t.before(async () => {
  env = await startEngine('add-cast');
  rest = await startRestfulServer(env.engine, '127.0.0.1:0');
  grpc = await startGrpcServer(env.engine, '127.0.0.1:0');
  client = new Client(`127.0.0.1:${grpc.port}`, 'add', 'add_cast', { timeoutMs: 10_000 });
});
t.teardown(async () => {
  client?.close();
  await rest?.close();
  await grpc?.close();
  await env?.stop();
});

/** float16 bits of 0.5, 1.5, 2.5, 3.5 (exact in float16). */
const HALVES = Uint16Array.of(0x3800, 0x3e00, 0x4100, 0x4300);
/** MindSpore's b64 type name of each dtype. */
const B64_TYPE: Record<NumericDType, string> = {
  bool: 'bool', int8: 'int8', int16: 'int16', int32: 'int32', int64: 'int64',
  uint8: 'uint8', uint16: 'uint16', uint32: 'uint32', uint64: 'uint64',
  float16: 'fp16', float32: 'fp32', float64: 'fp64',
};
const DTYPES = Object.keys(B64_TYPE) as NumericDType[];

/** x1 of `dtype` ([1, 0, 1, 1] for bool, [0.5, 1.5, 2.5, 3.5] for float16, else [1, 2, 3, 4]) and its float32 values. */
function x1Of(dtype: NumericDType): { tensor: Tensor; values: number[] } {
  if (dtype === 'float16') return { tensor: { dtype, shape: [2, 2], data: HALVES }, values: [0.5, 1.5, 2.5, 3.5] };
  const values = dtype === 'bool' ? [1, 0, 1, 1] : [1, 2, 3, 4];
  const data = new TYPED_ARRAY[dtype](4);
  values.forEach((v, i) => {
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[i] = BigInt(v);
    else data[i] = v;
  });
  return { tensor: { dtype, shape: [2, 2], data } as Tensor, values };
}

const X2 = [10, 20, 30, 40];
const b64 = (a: ArrayBufferView): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const post = (body: string) => request({ port: rest.port }, '/model/add:add_cast', { body });
const nested = (v: number[]): number[][] => [v.slice(0, 2), v.slice(2)];

t.test('REST: x1 as b64 of each numeric dtype is cast to float32 and added', async (t) => {
  for (const dtype of DTYPES) {
    const { tensor, values } = x1Of(dtype);
    const x1 = { b64: b64(tensor.data as ArrayBufferView), type: B64_TYPE[dtype], shape: [2, 2] };
    const r = await post(JSON.stringify({ instances: [{ x1, x2: nested(X2) }] }));
    t.equal(r.status, 200, `${dtype}: ${r.text}`);
    t.same(r.json, { instances: [{ y: nested(values.map((v, i) => v + X2[i]!)) }] }, dtype);
  }
});

t.test('REST: both inputs float16 (b64 "fp16"), as in MindSpore\'s example', async (t) => {
  const x = { b64: b64(HALVES), type: 'fp16', shape: [2, 2] };
  const r = await post(JSON.stringify({ instances: [{ x1: x, x2: x }] }));
  t.equal(r.status, 200, r.text);
  t.same(r.json, { instances: [{ y: [[1, 3], [5, 7]] }] });
});

t.test('gRPC: x1 as a tensor of each numeric dtype, x2 float16', async (t) => {
  const x2: Tensor = { dtype: 'float16', shape: [2, 2], data: HALVES };
  const outcomes = await client.inferEach(DTYPES.map((dtype) => ({ x1: x1Of(dtype).tensor, x2 })));
  DTYPES.forEach((dtype, k) => {
    const o = outcomes[k];
    if (!o || o instanceof ServingError) {
      t.fail(`${dtype}: ${o?.message}`);
      return;
    }
    t.equal(o.y!.dtype, 'float32');
    t.same(Array.from(o.y!.data as Float32Array), x1Of(dtype).values.map((v, i) => v + [0.5, 1.5, 2.5, 3.5][i]!), dtype);
  });
});

t.test('a string or bytes input is a client error saying what add_cast takes', async (t) => {
  const strings = await post('{"instances":[{"x1":[["a","b"],["c","d"]],"x2":[[1,2],[3,4]]}]}');
  t.equal(strings.status, 400, strings.text);
  t.same(strings.json, { error_msg: 'add_cast takes numeric inputs (bool, int*, uint*, float16/32/64), got string for x1' });
  const bytes = await post('{"instances":[{"x1":[[1,2],[3,4]],"x2":{"b64":"AAAA"}}]}');
  t.equal(bytes.status, 400, bytes.text);
  t.match(bytes.json, { error_msg: /got bytes for x2$/ });
  await t.rejects(client.infer({ x1: Buffer.from('abcd'), x2: x1Of('float32').tensor }), {
    code: 'E_INVALID_ARGUMENT',
    message: /add_cast takes numeric inputs .* got bytes for x1/,
  });
  const big = await post(JSON.stringify({ instances: [{ x1: { b64: b64(Float64Array.of(1, 2, 3, 1e300)), type: 'fp64', shape: [2, 2] }, x2: nested(X2) }] }));
  t.equal(big.status, 400, big.text);
  t.match(big.json, { error_msg: /add_cast input x1: element \[1\]\[1\] \(1e\+300\) is out of the float32 range/ });
  const after = await post('{"instances":[{"x1":[[1,2],[3,4]],"x2":[[1,1],[1,1]]}]}');
  t.same([after.status, after.json], [200, { instances: [{ y: [[2, 3], [4, 5]] }] }], 'the server still serves');
});
