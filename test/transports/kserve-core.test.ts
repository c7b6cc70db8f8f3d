// The KServe v2 core (transports/kserve/): datatypes, raw tensors, value lists, batch split and
// stack, model names and metadata, and inferV2 on a real engine (bundled `add`, and `ident`:
// one identity ONNX model per dtype plus a function-stage `echo`).
import t from 'tap';
import { ServingError } from '../../dist/engine/errors.js';
import { V2_DATATYPES, fromV2Datatype, toV2Datatype, v2ElementBytes } from '../../dist/transports/kserve/datatypes.js';
import { rawByteLength, tensorFromRaw, tensorToRaw, writeRawInto } from '../../dist/transports/kserve/raw.js';
import { tensorFromValues } from '../../dist/transports/kserve/values.js';
import { batchElement, stackBatch } from '../../dist/transports/kserve/batch.js';
import { parseV2Version, v2ModelMetadata, v2ModelReady, v2ModelRef, v2ServerMetadata, v2ServerReady } from '../../dist/transports/kserve/models.js';
import { type V2InferRequest, type V2InputTensor, inferV2 } from '../../dist/transports/kserve/infer.js';
import { float16ToFloat32 } from '../../dist/native/index.js';
import { type EngineFixture, startEngine } from './rest/fixtures/rest.js';
import { ADD_METADATA } from './rest/fixtures/kserve.js';
import { type Tensor, tensorStrings } from '../../dist/engine/tensor.js';

const code = (c: string) => ({ name: 'ServingError', code: c });

t.test('datatypes: every dtype maps to its v2 name and back; unknown names are 400', async (t) => {
  t.same(V2_DATATYPES.map((d) => toV2Datatype(fromV2Datatype(d))), V2_DATATYPES);
  t.equal(toV2Datatype('string'), 'BYTES');
  t.equal(toV2Datatype('float16'), 'FP16');
  t.equal(fromV2Datatype('BYTES'), 'bytes');
  t.equal(v2ElementBytes('FP64'), 8);
  t.equal(v2ElementBytes('BOOL'), 1);
  t.equal(v2ElementBytes('BYTES'), undefined);
  for (const bad of ['BF16', 'fp32', 'TYPE_FP32', '']) {
    t.throws(() => fromV2Datatype(bad, "input 'x'"), code('E_INVALID_DTYPE'), bad);
  }
  t.throws(() => fromV2Datatype('BF16'), /BF16 is not supported/);
  t.equal(new ServingError('E_INVALID_DTYPE', '').httpStatus, 400);
});

t.test('raw: numeric chunks are viewed when aligned and copied when not; BYTES are length-prefixed', async (t) => {
  const body = new Uint8Array(1 + 8);
  const values = Float32Array.of(1.5, -2);
  const aligned = new Uint8Array(16);
  aligned.set(new Uint8Array(values.buffer), 4);
  const viewed = tensorFromRaw('float32', [2], aligned.subarray(4, 12), 'x');
  t.same([...(viewed.data as Float32Array)], [1.5, -2]);
  t.equal((viewed.data as Float32Array).buffer, aligned.buffer, 'aligned: a view of the same memory');
  body.set(new Uint8Array(values.buffer), 1);
  const copied = tensorFromRaw('float32', [2], body.subarray(1), 'x');
  t.same([...(copied.data as Float32Array)], [1.5, -2]);
  t.not((copied.data as Float32Array).buffer, body.buffer, 'misaligned: copied');
  // a Buffer (what gRPC's bytes fields and HTTP bodies are), whose slice() is a view, not a copy
  const buf = Buffer.alloc(9);
  buf.set(new Uint8Array(values.buffer), 1);
  const fromBuffer = tensorFromRaw('float32', [2], buf.subarray(1), 'x');
  t.same([...(fromBuffer.data as Float32Array)], [1.5, -2], 'misaligned Buffer: copied');

  const strings: Tensor = { dtype: 'bytes', shape: [3], data: [Buffer.from('ab'), Buffer.alloc(0), Buffer.from('héllo')] };
  const raw = tensorToRaw(strings);
  t.equal(raw.byteLength, rawByteLength(strings));
  t.same([...raw.subarray(0, 6)], [2, 0, 0, 0, 0x61, 0x62]);
  const back = tensorFromRaw('bytes', [3], raw, 'x');
  t.same(tensorStrings(back), ['ab', '', 'héllo']);
  const into = new Uint8Array(raw.byteLength + 3);
  t.equal(writeRawInto(strings, into, 3), into.byteLength);

  for (const [dtype, data] of [
    ['int64', BigInt64Array.of(-(2n ** 63n), 7n)],
    ['uint16', Uint16Array.of(65535, 1)],
    ['float64', Float64Array.of(Math.PI, -0)],
    ['bool', Uint8Array.of(1, 0)],
  ] as const) {
    const tensor = { dtype, shape: [2], data } as Tensor;
    t.same(tensorFromRaw(dtype, [2], tensorToRaw(tensor).slice(), dtype).data, data, `${dtype} round trip`);
  }

  t.throws(() => tensorFromRaw('float32', [3], new Uint8Array(8), "input 'x'"), { code: 'E_INVALID_SHAPE', message: /needs 12 bytes, got 8/ });
  t.throws(() => tensorFromRaw('bool', [1], Uint8Array.of(2), 'x'), { code: 'E_INVALID_ARGUMENT', message: /expected 0 or 1/ });
  t.throws(() => tensorFromRaw('bytes', [2], raw.subarray(0, 6), 'x'), { code: 'E_INVALID_SHAPE', message: /ends after 1/ });
  t.throws(() => tensorFromRaw('bytes', [1], Uint8Array.of(9, 0, 0, 0, 1), 'x'), { code: 'E_INVALID_ARGUMENT', message: /says 9 bytes/ });
  t.throws(() => tensorFromRaw('bytes', [1], raw, 'x'), { code: 'E_INVALID_SHAPE', message: /bytes follow them/ });
});

t.test('values: each datatype takes its JSON or protobuf values, and refuses others with the index', async (t) => {
  t.same(tensorFromValues('bool', [3], [true, false, 1], 'x').data, Uint8Array.of(1, 0, 1));
  t.same(tensorFromValues('int8', [2], [-128, 127], 'x').data, Int8Array.of(-128, 127));
  t.same(tensorFromValues('uint32', [1], [4294967295], 'x').data, Uint32Array.of(4294967295));
  t.same(tensorFromValues('int64', [3], [-5, '-9223372036854775808', 2n], 'x').data, BigInt64Array.of(-5n, -(2n ** 63n), 2n));
  t.same(tensorFromValues('uint64', [1], ['18446744073709551615'], 'x').data, BigUint64Array.of(2n ** 64n - 1n));
  t.same([...(tensorFromValues('float32', [3], [0.5, 'NaN', '-Infinity'], 'x').data as Float32Array)], [0.5, NaN, -Infinity]);
  const half = tensorFromValues('float16', [3], [1, -2.5, 65504], 'x');
  t.equal(half.dtype, 'float16');
  t.same([...float16ToFloat32(half.data as Uint16Array)], [1, -2.5, 65504], 'FP16 from JSON numbers: converted to binary16');
  t.same(tensorFromValues('bytes', [2], ['hé', Uint8Array.of(0, 255)], 'x').data, [Buffer.from('hé'), Uint8Array.of(0, 255)]);
  t.same(tensorFromValues('float64', [2, 0], [], 'x').shape, [2, 0]);

  const refusals: [Tensor['dtype'], unknown[], RegExp][] = [
    ['bool', ['true'], /element 0 is "true", BOOL takes true or false/],
    ['int8', [128], /INT8 takes integers in \[-128, 127\]/],
    ['uint8', [-1], /element 0 is -1/],
    ['int32', [1.5], /INT32 takes integers/],
    ['int64', [2 ** 60], /decimal strings/],
    ['uint64', ['-1'], /UINT64 takes/],
    ['float32', [null], /element 0 is null/],
    ['float32', [[1]], /an array or object/],
    ['bytes', [1, 2], /element 0 is 1, BYTES takes strings/],
  ];
  for (const [dtype, values, message] of refusals) {
    t.throws(() => tensorFromValues(dtype, [values.length], values, "input 'x'"), { code: 'E_INVALID_ARGUMENT', message }, `${dtype} ${JSON.stringify(values, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v))}`);
  }
  t.throws(() => tensorFromValues('float32', [2, 2], [1, 2, 3], "input 'x'"), { code: 'E_INVALID_SHAPE', message: /needs 4 elements, data has 3/ });
  t.throws(() => tensorFromValues('float32', [-1], [], 'x'), code('E_INVALID_SHAPE'));
});

t.test('batch: elements are views along the leading dim; stacking needs one dtype and shape', async (t) => {
  const x: Tensor = { dtype: 'int32', shape: [3, 2], data: Int32Array.of(1, 2, 3, 4, 5, 6) };
  const second = batchElement(x, 1);
  t.same(second.shape, [2]);
  t.same([...(second.data as Int32Array)], [3, 4]);
  t.equal((second.data as Int32Array).buffer, (x.data).buffer, 'a view');
  const s: Tensor = { dtype: 'bytes', shape: [2], data: [Buffer.from('a'), Buffer.from('b')] };
  t.same(batchElement(s, 1), { dtype: 'bytes', shape: [], data: [Buffer.from('b')] });
  const stacked = stackBatch([0, 1, 2].map((j) => batchElement(x, j)), 'y');
  t.same(stacked.shape, [3, 2]);
  t.same([...(stacked.data as Int32Array)], [1, 2, 3, 4, 5, 6]);
  t.same(stackBatch([s, s], 'y'), { dtype: 'bytes', shape: [2, 2], data: [...s.data, ...s.data] });
  t.same(stackBatch([second], 'y').shape, [1, 2]);
  t.throws(() => stackBatch([second, x], "output 'y'"), { code: 'E_STAGE_FAILED', message: /output 'y': batch element 0 is int32 \[2\], element 1 is int32 \[3, 2\]/ });
});

t.test('versions are decimal strings; absent or "0" is the newest', async (t) => {
  t.equal(parseV2Version(undefined), 0);
  t.equal(parseV2Version(''), 0);
  t.equal(parseV2Version('0'), 0);
  t.equal(parseV2Version('12'), 12);
  for (const bad of ['x', '-1', '1.0', '99999999999', '4294967295']) t.throws(() => parseV2Version(bad), code('E_INVALID_ARGUMENT'), bad);
});

let fx: EngineFixture;
t.before(async () => {
  fx = await startEngine('kserve-core');
});
t.teardown(() => fx.stop());

const f32 = (name: string, shape: number[], values: number[]): V2InputTensor => ({
  name,
  datatype: 'FP32',
  shape,
  tensor: { dtype: 'float32', shape, data: Float32Array.from(values) },
});
const CTX = { transport: 'rest' } as const;
const metric = (series: string): number => {
  const line = fx.engine.metrics!.render().split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
};

t.test('model names: a servable is its default (first) method; <servable>.<method> any method', async (t) => {
  t.same(v2ModelRef(fx.engine, 'add'), { servable: 'add', method: 'add_common' });
  t.same(v2ModelRef(fx.engine, 'add.add_cast'), { servable: 'add', method: 'add_cast' });
  t.same(v2ModelRef(fx.engine, 'ident.id_float16'), { servable: 'ident', method: 'id_float16' });
  t.equal(v2ModelRef(fx.engine, 'nope'), undefined);
  t.equal(v2ModelRef(fx.engine, 'nope.add_common'), undefined);
  t.same(v2ModelRef(fx.engine, 'add.nope'), { servable: 'add', method: 'nope' }, 'the method is checked when it is used');
});

t.test('server metadata and readiness', async (t) => {
  const m = v2ServerMetadata(fx.engine);
  t.equal(m.name, 'actorserve');
  t.match(m.version, /^\d+\.\d+\.\d+/);
  t.same(m.extensions, ['binary_tensor_data', 'sequence', 'sequence(string_id)', 'generate']);
  t.equal(v2ServerReady(fx.engine), true);
  t.equal(v2ModelReady(fx.engine, 'add'), true);
  t.equal(v2ModelReady(fx.engine, 'add.add_cast', '1'), true);
  t.throws(() => v2ModelReady(fx.engine, 'nope'), code('E_UNKNOWN_SERVABLE'));
  t.throws(() => v2ModelReady(fx.engine, 'add', '7'), code('E_UNKNOWN_VERSION'));
  t.throws(() => v2ModelReady(fx.engine, 'add.nope'), code('E_UNKNOWN_METHOD'));
});

t.test('model metadata: v2 datatypes, -1 for the batch dim and dynamic dims, the name mapping in properties', async (t) => {
  t.same(v2ModelMetadata(fx.engine, 'add'), ADD_METADATA);
  const cast = v2ModelMetadata(fx.engine, 'add.add_cast', '1');
  t.same(cast.inputs[0], { name: 'x1', datatype: '', shape: [-1] }, 'an input feeding a TS stage: any datatype, unknown rank');
  t.same(cast.outputs[0], { name: 'y', datatype: 'FP32', shape: [-1, 2, 2] });
  t.same(v2ModelMetadata(fx.engine, 'ident.id_string').inputs, [{ name: 'x', datatype: 'BYTES', shape: [-1, 2] }]);
  t.same(v2ModelMetadata(fx.engine, 'ident.id_bool').outputs, [{ name: 'y', datatype: 'BOOL', shape: [-1, 2] }]);
  const echo = v2ModelMetadata(fx.engine, 'ident.echo');
  t.equal(echo.properties['batched'], 'false', 'a method without a model stage is not batched');
  t.throws(() => v2ModelMetadata(fx.engine, 'nope'), code('E_UNKNOWN_SERVABLE'));
  t.throws(() => v2ModelMetadata(fx.engine, 'add', '3'), code('E_UNKNOWN_VERSION'));
  t.throws(() => v2ModelMetadata(fx.engine, 'add', 'v1'), code('E_INVALID_ARGUMENT'));
  t.throws(() => v2ModelMetadata(fx.engine, 'add.nope'), { code: 'E_UNKNOWN_METHOD', message: /models: add, add.add_common, add.add_cast/ });
});

t.test('inferV2: a batch of N runs as N instances and stacks back; id, outputs and parameters', async (t) => {
  const before = metric('actorserve_requests_total{servable="add",method="add_common",version="1",transport="rest"}');
  const request: V2InferRequest = {
    model: 'add',
    id: 'req-1',
    inputs: [f32('x2', [3, 2, 2], Array.from({ length: 12 }, () => 1)), f32('x1', [3, 2, 2], Array.from({ length: 12 }, (_, i) => i))],
    parameters: { note: 'kept', n: 3, flag: true },
  };
  const r = await inferV2(fx.engine, request, CTX);
  t.equal(r.model_name, 'add');
  t.equal(r.model_version, '1');
  t.equal(r.id, 'req-1');
  t.same(r.parameters, { note: 'kept', n: 3, flag: true });
  t.equal(r.outputs.length, 1);
  const y = r.outputs[0]!;
  t.same([y.name, y.datatype, y.shape], ['y', 'FP32', [3, 2, 2]]);
  t.same([...(y.tensor.data as Float32Array)], Array.from({ length: 12 }, (_, i) => i + 1));
  t.equal(metric('actorserve_requests_total{servable="add",method="add_common",version="1",transport="rest"}'), before + 1, 'counted once, under rest');

  const noId = await inferV2(fx.engine, { model: 'add.add_common', version: '1', inputs: [f32('x1', [1, 2, 2], [1, 2, 3, 4]), f32('x2', [1, 2, 2], [0, 0, 0, 0])], outputs: ['y'] }, CTX);
  t.equal(noId.id, undefined);
  t.equal(noId.parameters, undefined);
  t.same(noId.outputs[0]!.shape, [1, 2, 2]);
});

t.test('inferV2: every dtype through an identity model; BYTES becomes the string the model takes', async (t) => {
  const cases: [string, V2InputTensor['datatype'], Tensor][] = [
    ['bool', 'BOOL', { dtype: 'bool', shape: [2, 2], data: Uint8Array.of(1, 0, 0, 1) }],
    ['int8', 'INT8', { dtype: 'int8', shape: [2, 2], data: Int8Array.of(-1, 2, -3, 4) }],
    ['int64', 'INT64', { dtype: 'int64', shape: [1, 2], data: BigInt64Array.of(-(2n ** 62n), 5n) }],
    ['uint64', 'UINT64', { dtype: 'uint64', shape: [1, 2], data: BigUint64Array.of(2n ** 64n - 1n, 0n) }],
    ['float16', 'FP16', { dtype: 'float16', shape: [1, 2], data: Uint16Array.of(0x3c00, 0xc000) }],
    ['float64', 'FP64', { dtype: 'float64', shape: [2, 2], data: Float64Array.of(0.1, 0.2, 0.3, 0.4) }],
    ['string', 'BYTES', { dtype: 'bytes', shape: [2, 2], data: ['a', 'bc', '', 'déf'].map((s) => Buffer.from(s)) }],
  ];
  for (const [dtype, datatype, tensor] of cases) {
    const r = await inferV2(fx.engine, { model: `ident.id_${dtype}`, inputs: [{ name: 'x', datatype, shape: tensor.shape, tensor }] }, CTX);
    const y = r.outputs[0]!;
    t.equal(y.datatype, datatype, dtype);
    t.same(y.shape, tensor.shape, dtype);
    if (dtype === 'string') t.same(tensorStrings(y.tensor), ['a', 'bc', '', 'déf']);
    else t.same(Array.from(y.tensor.data as ArrayLike<unknown>), Array.from(tensor.data as ArrayLike<unknown>), dtype);
  }
});

t.test('inferV2: a method that is not batched takes each tensor whole as one instance', async (t) => {
  const tensor: Tensor = { dtype: 'int32', shape: [2, 3], data: Int32Array.of(1, 2, 3, 4, 5, 6) };
  const r = await inferV2(fx.engine, { model: 'ident.echo', inputs: [{ name: 'x', datatype: 'INT32', shape: [2, 3], tensor }] }, CTX);
  t.same(r.outputs[0]!.shape, [2, 3]);
  t.same([...(r.outputs[0]!.tensor.data as Int32Array)], [1, 2, 3, 4, 5, 6]);
  const scalar: Tensor = { dtype: 'float64', shape: [], data: Float64Array.of(7) };
  const s = await inferV2(fx.engine, { model: 'ident.echo', inputs: [{ name: 'x', datatype: 'FP64', shape: [], tensor: scalar }] }, CTX);
  t.same(s.outputs[0]!.shape, []);
});

t.test('inferV2: bad requests are refused with the right code before anything runs, and counted', async (t) => {
  const refusedBefore = metric('actorserve_requests_total{servable="",method="",version="",transport="rest"}');
  const ok = [f32('x1', [1, 2, 2], [1, 2, 3, 4]), f32('x2', [1, 2, 2], [1, 2, 3, 4])];
  const cases: [string, Partial<V2InferRequest>, string, RegExp][] = [
    ['unknown model', { model: 'nope' }, 'E_UNKNOWN_SERVABLE', /'nope' is not loaded/],
    ['unknown method', { model: 'add.nope' }, 'E_UNKNOWN_METHOD', /no method "nope"/],
    ['unknown version', { version: '5' }, 'E_UNKNOWN_VERSION', /no loaded version 5/],
    ['malformed version', { version: 'one' }, 'E_INVALID_ARGUMENT', /model version "one"/],
    ['unknown output', { outputs: ['z'] }, 'E_INVALID_ARGUMENT', /has no output "z" \(outputs: y\)/],
    ['output twice', { outputs: ['y', 'y'] }, 'E_INVALID_ARGUMENT', /requested twice/],
    ['missing input', { inputs: [ok[0]!] }, 'E_MISSING_INPUT', /needs input "x2"/],
    ['extra input', { inputs: [...ok, f32('x3', [1], [1])] }, 'E_EXTRA_INPUT', /no input "x3" \(inputs: x1, x2\)/],
    ['input twice', { inputs: [ok[0]!, ok[0]!, ok[1]!] }, 'E_INVALID_ARGUMENT', /"x1" is given twice/],
    ['wrong datatype', { inputs: [ok[0]!, { name: 'x2', datatype: 'INT32', shape: [1, 2, 2], tensor: { dtype: 'int32', shape: [1, 2, 2], data: new Int32Array(4) } }] }, 'E_INVALID_DTYPE', /input 'x2' of model "add" takes FP32, got INT32/],
    ['datatype unlike the data', { inputs: [ok[0]!, { ...ok[1]!, datatype: 'FP64' }] }, 'E_INVALID_ARGUMENT', /datatype FP64 does not match its data \(float32\)/],
    ['shape unlike the data', { inputs: [ok[0]!, { ...ok[1]!, shape: [4] }] }, 'E_INVALID_ARGUMENT', /shape \[4\] does not match/],
    ['batch sizes differ', { inputs: [ok[0]!, f32('x2', [2, 2, 2], new Array<number>(8).fill(0))] }, 'E_INVALID_SHAPE', /batch size 2, input 'x1' has 1/],
    ['batch of zero', { inputs: [f32('x1', [0, 2, 2], []), f32('x2', [0, 2, 2], [])] }, 'E_NO_INSTANCES', /batch size 0/],
    ['scalar to a batched model', { inputs: [f32('x1', [], [1]), ok[1]!] }, 'E_INVALID_SHAPE', /shape \[\], but model "add" is batched/],
  ];
  for (const [what, change, c, message] of cases) {
    const err = await inferV2(fx.engine, { model: 'add', inputs: ok, ...change }, CTX).catch((e: unknown) => e);
    t.match(err, { code: c, message }, what);
  }
  t.equal(metric('actorserve_requests_total{servable="",method="",version="",transport="rest"}'), refusedBefore + cases.length, 'each refusal counted once under rest');

  const shape = await inferV2(fx.engine, { model: 'add', inputs: [f32('x1', [1, 3], [1, 2, 3]), f32('x2', [1, 3], [1, 2, 3])] }, CTX).catch((e: unknown) => e);
  t.match(shape, { code: 'E_INVALID_SHAPE' }, 'a shape the model refuses: the runtime\'s error, 400');
  t.equal((shape as ServingError).httpStatus, 400);
});
