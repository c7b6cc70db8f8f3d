// The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), called by a plain
// @grpc/grpc-js client built from the proto: every unary RPC, every datatype in typed contents
// and in raw_input_contents (replies always raw), raw and typed mixing refused, bad input of
// each kind answered with its status code and the server live afterwards, and MindSpore's
// service answering on the same port.
import { status } from '@grpc/grpc-js';
import t, { type Test } from 'tap';
import { startGrpcServer, type GrpcServer } from '../../dist/transports/grpc/server.js';
import { Client } from '../../dist/transports/grpc/client.js';
import { type EngineFixture, f32, startEngine } from './grpc/fixtures/engine.js';
import { type Msg, OipClient, rawBytes, rawOf } from './grpc/fixtures/oip-client.js';

let fx: EngineFixture;
let server: GrpcServer;
let oip: OipClient;

t.before(async () => {
  fx = await startEngine('kserve-grpc', { only: ['add', 'echo', 'ident'] });
  server = await startGrpcServer(fx.engine, '127.0.0.1:0');
  oip = new OipClient(server.address);
});
t.teardown(async () => {
  oip?.close();
  await server?.close();
  await fx?.stop();
});

const f32raw = (...v: number[]) => rawOf(Float32Array.from(v));
const outputF32 = (reply: Msg, i = 0) => {
  const raw = (reply['raw_output_contents'] as Buffer[])[i]!;
  return [...new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))];
};

/** add's inputs for one instance (x1 = 1..4, x2 = 10..40) in raw form. */
function addRequest(extra: Msg = {}): Msg {
  return {
    model_name: 'add',
    inputs: [
      { name: 'x1', datatype: 'FP32', shape: [1, 2, 2] },
      { name: 'x2', datatype: 'FP32', shape: [1, 2, 2] },
    ],
    raw_input_contents: [f32raw(1, 2, 3, 4), f32raw(10, 20, 30, 40)],
    ...extra,
  };
}

async function stillServes(t: Test, what: string): Promise<void> {
  const live = await oip.ok('ServerLive');
  t.equal(live['live'], true, `${what}: ServerLive afterwards`);
  const r = await oip.ok('ModelInfer', addRequest({ model_version: '1' }));
  t.same(outputF32(r), [11, 22, 33, 44], `${what}: an inference afterwards`);
}

t.test('ServerLive, ServerReady, ServerMetadata', async (t) => {
  t.same(await oip.ok('ServerLive'), { live: true });
  t.same(await oip.ok('ServerReady'), { ready: true });
  const m = await oip.ok('ServerMetadata');
  t.equal(m['name'], 'actorserve');
  t.match(m['version'], /^\d+\.\d+\.\d+/);
  t.same(m['extensions'], ['sequence', 'sequence(string_id)'], 'binary_tensor_data is REST only; sequences are served over gRPC too');
});

t.test('ModelReady: servables, methods and versions; unknown ones are NOT_FOUND', async (t) => {
  for (const [name, version] of [['add', ''], ['add', '1'], ['add', '2'], ['add.add_common', ''], ['ident.id_float16', ''], ['echo', '']]) {
    t.same(await oip.ok('ModelReady', { name, version }), { ready: true }, `${name} ${version || '(newest)'}`);
  }
  for (const [name, version, code] of [
    ['nope', '', status.NOT_FOUND],
    ['add', '7', status.NOT_FOUND],
    ['add.nope', '', status.NOT_FOUND],
    ['add', 'one', status.INVALID_ARGUMENT],
    ['', '', status.NOT_FOUND],
  ] as const) {
    const r = await oip.call('ModelReady', { name, version });
    t.equal(r.error?.code, code, `${JSON.stringify(name)} ${JSON.stringify(version)}: status ${code}`);
  }
});

t.test('ModelMetadata: versions, platform, tensors with -1 for the batch dim, properties', async (t) => {
  const m = await oip.ok('ModelMetadata', { name: 'add' });
  t.equal(m['name'], 'add');
  t.same(m['versions'], ['1', '2']);
  t.equal(m['platform'], 'actorserve');
  t.same(m['inputs'], [
    { name: 'x1', datatype: 'FP32', shape: ['-1', '2', '2'] },
    { name: 'x2', datatype: 'FP32', shape: ['-1', '2', '2'] },
  ]);
  t.same(m['outputs'], [{ name: 'y', datatype: 'FP32', shape: ['-1', '2', '2'] }]);
  t.match(m['properties'], { servable: 'add', method: 'add_common', version: '2', batched: 'true' });
  const v1 = await oip.ok('ModelMetadata', { name: 'add.slow', version: '1' });
  t.match(v1['properties'], { method: 'slow', version: '1' });
  const r = await oip.call('ModelMetadata', { name: 'nope' });
  t.equal(r.error?.code, status.NOT_FOUND, 'unknown model: NOT_FOUND');
  t.equal(r.error?.metadata.get('actorserve-error-code')[0], 'E_UNKNOWN_SERVABLE', 'the code trailer');
});

t.test('ModelInfer raw: batch of instances, versions, id echoed, replies in raw_output_contents', async (t) => {
  const r = await oip.ok('ModelInfer', {
    model_name: 'add',
    model_version: '1',
    id: 'req-1',
    inputs: [
      { name: 'x1', datatype: 'FP32', shape: [2, 2, 2] },
      { name: 'x2', datatype: 'FP32', shape: [2, 2, 2] },
    ],
    raw_input_contents: [f32raw(1, 2, 3, 4, 5, 6, 7, 8), f32raw(10, 20, 30, 40, 50, 60, 70, 80)],
  });
  t.equal(r['model_name'], 'add');
  t.equal(r['model_version'], '1');
  t.equal(r['id'], 'req-1');
  t.same(r['outputs'], [{ name: 'y', datatype: 'FP32', shape: ['2', '2', '2'], parameters: {}, contents: null }]);
  t.same(outputF32(r), [11, 22, 33, 44, 55, 66, 77, 88]);
  const newest = await oip.ok('ModelInfer', addRequest());
  t.equal(newest['model_version'], '2', 'no version: the newest');
  t.same(outputF32(newest), [-9, -18, -27, -36], 'version 2 subtracts');
  const method = await oip.ok('ModelInfer', addRequest({ model_name: 'add.add_common', model_version: '1' }));
  t.same(outputF32(method), [11, 22, 33, 44], '<servable>.<method> names a method');
  t.equal(method['id'], '', 'no id sent: none echoed');
});

t.test('ModelInfer typed contents; outputs selected; parameters echoed', async (t) => {
  const r = await oip.ok('ModelInfer', {
    model_name: 'add',
    model_version: '1',
    inputs: [
      { name: 'x1', datatype: 'FP32', shape: [1, 2, 2], contents: { fp32_contents: [1, 2, 3, 4] } },
      { name: 'x2', datatype: 'FP32', shape: [1, 2, 2], contents: { fp32_contents: [10, 20, 30, 40] } },
    ],
    outputs: [{ name: 'y' }],
    parameters: { tag: { string_param: 'a' }, n: { int64_param: 7 }, f: { bool_param: true } },
  });
  t.same(outputF32(r), [11, 22, 33, 44], 'typed in, raw out');
  t.match(r['parameters'], { tag: { string_param: 'a' }, n: { int64_param: '7' }, f: { bool_param: true } }, 'parameters echoed');
});

// Every datatype through an ONNX Identity model (ident.id_<dtype>, [N, 2]): typed contents
// where the datatype has a field, raw always; the reply's raw bytes must equal what was sent.
const DATATYPES: { datatype: string; model: string; field?: string; typed?: unknown[]; raw: Buffer }[] = [
  { datatype: 'BOOL', model: 'ident.id_bool', field: 'bool_contents', typed: [true, false, false, true], raw: Buffer.from([1, 0, 0, 1]) },
  { datatype: 'INT8', model: 'ident.id_int8', field: 'int_contents', typed: [-128, 127, 0, -1], raw: rawOf(Int8Array.of(-128, 127, 0, -1)) },
  { datatype: 'INT16', model: 'ident.id_int16', field: 'int_contents', typed: [-32768, 32767, 1, -2], raw: rawOf(Int16Array.of(-32768, 32767, 1, -2)) },
  { datatype: 'INT32', model: 'ident.id_int32', field: 'int_contents', typed: [-2147483648, 2147483647, 3, -4], raw: rawOf(Int32Array.of(-2147483648, 2147483647, 3, -4)) },
  {
    datatype: 'INT64',
    model: 'ident.id_int64',
    field: 'int64_contents',
    typed: ['-9223372036854775808', '9223372036854775807', '9007199254740993', '-5'],
    raw: rawOf(BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 9007199254740993n, -5n)),
  },
  { datatype: 'UINT8', model: 'ident.id_uint8', field: 'uint_contents', typed: [0, 255, 7, 128], raw: rawOf(Uint8Array.of(0, 255, 7, 128)) },
  { datatype: 'UINT16', model: 'ident.id_uint16', field: 'uint_contents', typed: [0, 65535, 8, 300], raw: rawOf(Uint16Array.of(0, 65535, 8, 300)) },
  { datatype: 'UINT32', model: 'ident.id_uint32', field: 'uint_contents', typed: [0, 4294967295, 9, 70000], raw: rawOf(Uint32Array.of(0, 4294967295, 9, 70000)) },
  {
    datatype: 'UINT64',
    model: 'ident.id_uint64',
    field: 'uint64_contents',
    typed: ['18446744073709551615', '0', '9007199254740993', '10'],
    raw: rawOf(BigUint64Array.of(2n ** 64n - 1n, 0n, 9007199254740993n, 10n)),
  },
  { datatype: 'FP16', model: 'ident.id_float16', raw: rawOf(Uint16Array.of(0x3c00, 0xc000, 0x7c00, 0x0001)) },
  { datatype: 'FP32', model: 'ident.id_float32', field: 'fp32_contents', typed: [1.5, -0.25, 1e30, 0], raw: rawOf(Float32Array.of(1.5, -0.25, 1e30, 0)) },
  { datatype: 'FP64', model: 'ident.id_float64', field: 'fp64_contents', typed: [Math.PI, -1e300, 5e-324, 0], raw: rawOf(Float64Array.of(Math.PI, -1e300, 5e-324, 0)) },
  { datatype: 'BYTES', model: 'ident.id_string', field: 'bytes_contents', typed: ['a', 'é', '', 'xyz'].map((s) => Buffer.from(s)), raw: rawBytes(['a', 'é', '', 'xyz']) },
];

t.test('every datatype, typed and raw, comes back raw and exact', async (t) => {
  for (const c of DATATYPES) {
    const input = { name: 'x', datatype: c.datatype, shape: [2, 2] };
    const raw = await oip.ok('ModelInfer', { model_name: c.model, inputs: [input], raw_input_contents: [c.raw] });
    t.same(raw['outputs'], [{ name: 'y', datatype: c.datatype, shape: ['2', '2'], parameters: {}, contents: null }], `${c.datatype} raw: output tensor`);
    t.same((raw['raw_output_contents'] as Buffer[])[0], c.raw, `${c.datatype} raw: bytes round-trip`);
    if (c.field === undefined) {
      const r = await oip.call('ModelInfer', { model_name: c.model, inputs: [{ ...input, contents: { fp32_contents: [1, 2, 3, 4] } }] });
      t.equal(r.error?.code, status.INVALID_ARGUMENT, `${c.datatype} has no typed field: INVALID_ARGUMENT`);
      t.match(r.error?.details, /no typed contents field; send it in raw_input_contents/);
      continue;
    }
    const typed = await oip.ok('ModelInfer', { model_name: c.model, inputs: [{ ...input, contents: { [c.field]: c.typed } }] });
    t.same((typed['raw_output_contents'] as Buffer[])[0], c.raw, `${c.datatype} typed (${c.field}): values exact`);
  }
});

t.test('BYTES of any shape through a method without a model (echo)', async (t) => {
  const r = await oip.ok('ModelInfer', { model_name: 'echo', inputs: [{ name: 'x', datatype: 'BYTES', shape: [3], contents: { bytes_contents: [Buffer.from('one'), Buffer.alloc(0), Buffer.from([0, 255])] } }] });
  t.same(r['outputs'], [{ name: 'y', datatype: 'BYTES', shape: ['3'], parameters: {}, contents: null }]);
  t.same((r['raw_output_contents'] as Buffer[])[0], rawBytes(['one', Buffer.alloc(0), Buffer.from([0, 255])]));
});

t.test('raw and typed contents in one request are refused', async (t) => {
  const r = await oip.call('ModelInfer', {
    model_name: 'add',
    inputs: [
      { name: 'x1', datatype: 'FP32', shape: [1, 2, 2] },
      { name: 'x2', datatype: 'FP32', shape: [1, 2, 2], contents: { fp32_contents: [1, 2, 3, 4] } },
    ],
    raw_input_contents: [f32raw(1, 2, 3, 4), f32raw(1, 2, 3, 4)],
  });
  t.equal(r.error?.code, status.INVALID_ARGUMENT);
  t.match(r.error?.details, /input 'x2' sets contents while the message uses raw_input_contents/);
  t.equal(r.error?.metadata.get('actorserve-error-code')[0], 'E_INVALID_ARGUMENT');
  await stillServes(t, 'mixed');
});

t.test('bad input of each kind: its status, and the server serves afterwards', async (t) => {
  const x2 = { name: 'x2', datatype: 'FP32', shape: [1, 2, 2] };
  const four = f32raw(1, 2, 3, 4);
  const cases: [string, Msg, number, RegExp][] = [
    ['unknown model', addRequest({ model_name: 'nope' }), status.NOT_FOUND, /nope/],
    ['unknown method', addRequest({ model_name: 'add.nope' }), status.NOT_FOUND, /nope/],
    ['unknown version', addRequest({ model_version: '9' }), status.NOT_FOUND, /9/],
    ['malformed version', addRequest({ model_version: 'v1' }), status.INVALID_ARGUMENT, /not an integer/],
    ['fewer raw entries than inputs', addRequest({ raw_input_contents: [four] }), status.INVALID_ARGUMENT, /raw_input_contents holds 1 entry for 2 inputs/],
    ['raw size does not fit the shape', addRequest({ raw_input_contents: [f32raw(1, 2, 3), four] }), status.INVALID_ARGUMENT, /needs 16 bytes, got 12/],
    [
      'typed count does not fit the shape',
      { model_name: 'add', inputs: [{ ...x2, name: 'x1', contents: { fp32_contents: [1, 2, 3] } }, { ...x2, contents: { fp32_contents: [1, 2, 3, 4] } }] },
      status.INVALID_ARGUMENT,
      /needs 4 elements, data has 3/,
    ],
    [
      'values in the field of another datatype',
      { model_name: 'add', inputs: [{ ...x2, name: 'x1', contents: { int_contents: [1, 2, 3, 4] } }, { ...x2, contents: { fp32_contents: [1, 2, 3, 4] } }] },
      status.INVALID_ARGUMENT,
      /carries its values in contents.fp32_contents, not in contents.int_contents/,
    ],
    ['unknown datatype', addRequest({ inputs: [{ ...x2, name: 'x1', datatype: 'FLOAT' }, x2] }), status.INVALID_ARGUMENT, /unknown datatype "FLOAT"/],
    ['BF16', addRequest({ inputs: [{ ...x2, name: 'x1', datatype: 'BF16', shape: [1, 2, 4] }, x2] }), status.INVALID_ARGUMENT, /BF16 is not supported/],
    ['a datatype the model does not take', addRequest({ inputs: [{ ...x2, name: 'x1', datatype: 'INT32' }, x2] }), status.INVALID_ARGUMENT, /x1/],
    ['negative dim', addRequest({ inputs: [{ ...x2, name: 'x1', shape: [-1, 2, 2] }, x2] }), status.INVALID_ARGUMENT, /invalid dimension -1/],
    ['a missing input', addRequest({ inputs: [x2], raw_input_contents: [four] }), status.INVALID_ARGUMENT, /x1/],
    ['an unknown input', addRequest({ inputs: [{ ...x2, name: 'x1' }, x2, { ...x2, name: 'x3' }], raw_input_contents: [four, four, four] }), status.INVALID_ARGUMENT, /x3/],
    ['an input given twice', addRequest({ inputs: [x2, x2] }), status.INVALID_ARGUMENT, /given twice/],
    ['an input without a name', addRequest({ inputs: [{ ...x2, name: '' }, x2] }), status.INVALID_ARGUMENT, /has no name/],
    ['an unknown requested output', addRequest({ outputs: [{ name: 'z' }] }), status.INVALID_ARGUMENT, /z/],
    ['int8 out of range', { model_name: 'ident.id_int8', inputs: [{ name: 'x', datatype: 'INT8', shape: [1, 2], contents: { int_contents: [1, 300] } }] }, status.INVALID_ARGUMENT, /element 1 is 300/],
    ['BOOL raw byte other than 0/1', { model_name: 'ident.id_bool', inputs: [{ name: 'x', datatype: 'BOOL', shape: [1, 2] }], raw_input_contents: [Buffer.from([1, 2])] }, status.INVALID_ARGUMENT, /expected 0 or 1/],
    [
      'BYTES raw length past the end',
      { model_name: 'echo', inputs: [{ name: 'x', datatype: 'BYTES', shape: [1] }], raw_input_contents: [Buffer.from([9, 0, 0, 0, 65])] },
      status.INVALID_ARGUMENT,
      /says 9 bytes, only 1 are left/,
    ],
    ['batch sizes that differ', addRequest({ inputs: [{ ...x2, name: 'x1', shape: [2, 2, 2] }, x2], raw_input_contents: [f32raw(1, 2, 3, 4, 5, 6, 7, 8), four] }), status.INVALID_ARGUMENT, /batch|leading/i],
  ];
  for (const [name, req, code, message] of cases) {
    const r = await oip.call('ModelInfer', req);
    t.equal(r.error?.code, code, `${name}: status ${code} (got ${r.error?.code}: ${r.error?.details})`);
    t.match(r.error?.details ?? '', message, `${name}: message`);
    t.ok(r.error?.metadata.get('actorserve-error-code')[0], `${name}: the code trailer`);
  }
  await stillServes(t, 'after every bad request');
});

t.test("MindSpore's service answers on the same port", async (t) => {
  const client = new Client(server.address, 'add', 'add_common', { versionNumber: 1 });
  t.teardown(() => client.close());
  const [out] = await client.infer({ x1: f32([1, 2, 3, 4]), x2: f32([10, 20, 30, 40]) });
  t.same([...(out!.y!.data as Float32Array)], [11, 22, 33, 44]);
  const v2 = await oip.ok('ModelInfer', addRequest({ model_version: '1' }));
  t.same(outputF32(v2), [11, 22, 33, 44], 'the same answer over v2');
});
