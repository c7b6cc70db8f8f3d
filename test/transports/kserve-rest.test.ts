// KServe v2 over REST, JSON bodies: every route, every datatype, batching, output selection,
// errors with their statuses (and the server still live after them), metrics. A real engine
// (bundled add, add_sub, matmul, resnet; `ident` identity models) and its uWS server.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { startRestfulServer } from '../../dist/transports/rest/server.js';
import { ONNX_DTYPES } from '../../dist/servables/onnx-builder.js';
import { ADD_METADATA, type KServeFixture, postJson, startKServe } from './rest/fixtures/kserve.js';
import { request } from './rest/fixtures/rest.js';

let fx: KServeFixture;
let port = 0;
t.before(async () => {
  fx = await startKServe('json');
  port = fx.rest.port;
});
t.teardown(() => fx.stop());

const get = (path: string) => request({ port }, path);
const ones = (n: number) => new Array<number>(n).fill(1);
const addInputs = (x1: unknown, x2: unknown, shape = [1, 2, 2]) => [
  { name: 'x1', datatype: 'FP32', shape, data: x1 },
  { name: 'x2', datatype: 'FP32', shape, data: x2 },
];

t.test('GET /v2: server metadata lists the binary tensor data extension', async (t) => {
  const r = await get('/v2');
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^application\/json/);
  t.match(r.json, { name: 'actorserve', version: /^\d+\.\d+\.\d+/, extensions: ['binary_tensor_data', 'sequence', 'sequence(string_id)', 'generate'] });
});

t.test('health: live and ready are 200 with JSON bodies', async (t) => {
  const live = await get('/v2/health/live');
  t.same([live.status, live.json], [200, { live: true }]);
  const ready = await get('/v2/health/ready');
  t.same([ready.status, ready.json], [200, { ready: true }]);
});

t.test('health: a server with nothing loaded is live but not ready (503 {"error"})', async (t) => {
  const engine = new ServingServer();
  engine.log = () => {};
  const rest = await startRestfulServer(engine, '127.0.0.1:0');
  engine.attachListener(rest);
  t.teardown(() => engine.stop());
  t.equal((await request({ port: rest.port }, '/v2/health/live')).status, 200);
  const ready = await request({ port: rest.port }, '/v2/health/ready');
  t.equal(ready.status, 503);
  t.match(ready.json, { error: /no servable is loaded/ });
});

t.test('model metadata: names, versions, v2 datatypes and -1 dims, the name mapping', async (t) => {
  const add = await get('/v2/models/add');
  t.equal(add.status, 200);
  t.same(add.json, ADD_METADATA);
  t.match((await get('/v2/models/add.add_cast/versions/1')).json, { name: 'add.add_cast', properties: { method: 'add_cast' } });
  t.match((await get('/v2/models/matmul')).json, {
    inputs: [{ name: 'x', datatype: '', shape: [-1] }, { name: 'y' }],
    properties: { method: 'predict', batched: 'false' },
  });
  t.match((await get('/v2/models/resnet.classify_top5')).json, { outputs: [{ name: 'labels' }, { name: 'scores' }], properties: { batched: 'true' } });
  t.match((await get('/v2/models/ident.id_int64')).json, { inputs: [{ name: 'x', datatype: 'INT64', shape: [-1, 2] }] });
  const unknown = await get('/v2/models/nope');
  t.equal(unknown.status, 404);
  t.match(unknown.json, { error: /servable 'nope' is not loaded/ });
  t.same(Object.keys(unknown.json as object), ['error'], 'a v2 error body has one field, error');
  t.equal((await get('/v2/models/add/versions/2')).status, 404);
  t.equal((await get('/v2/models/add.nope')).status, 404);
  const bad = await get('/v2/models/add/versions/x');
  t.equal(bad.status, 400);
  t.match(bad.json, { error: /model version "x"/ });
});

t.test('model readiness: 200 {"name","ready":true}; unknown models 404', async (t) => {
  const r = await get('/v2/models/add/ready');
  t.same([r.status, r.json], [200, { name: 'add', ready: true }]);
  t.same((await get('/v2/models/resnet.classify_top1/versions/1/ready')).json, { name: 'resnet.classify_top1', ready: true });
  const unknown = await get('/v2/models/nope/ready');
  t.equal(unknown.status, 404);
  t.match(unknown.json, { error: /not loaded/ });
  t.equal((await get('/v2/models/add/versions/3/ready')).status, 404);
});

t.test('infer: nested or flat data, a batch of instances, id and parameters echoed', async (t) => {
  const nested = await postJson(port, '/v2/models/add/infer', {
    id: 'abc-1',
    parameters: { tag: 'x', n: 2, on: true },
    inputs: addInputs([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], ones(8), [2, 2, 2]),
  });
  t.equal(nested.status, 200, JSON.stringify(nested.json));
  t.match(nested.http.headers['content-type'], /^application\/json/);
  t.same(nested.json, {
    model_name: 'add',
    model_version: '1',
    id: 'abc-1',
    parameters: { tag: 'x', n: 2, on: true },
    outputs: [{ name: 'y', datatype: 'FP32', shape: [2, 2, 2], data: [2, 3, 4, 5, 6, 7, 8, 9] }],
  });
  const flat = await postJson(port, '/v2/models/add.add_common/versions/1/infer', { inputs: addInputs([1, 2, 3, 4], [0.5, 0.5, 0.5, 0.5]) });
  t.same(flat.json.outputs, [{ name: 'y', datatype: 'FP32', shape: [1, 2, 2], data: [1.5, 2.5, 3.5, 4.5] }]);
  t.equal(flat.json.id, undefined, 'no id in, no id out');
  t.equal(flat.json.parameters, undefined);
  const cast = await postJson(port, '/v2/models/add.add_cast/infer', {
    inputs: [
      { name: 'x1', datatype: 'INT32', shape: [1, 2, 2], data: [1, 2, 3, 4] },
      { name: 'x2', datatype: 'FP64', shape: [1, 2, 2], data: [0.5, 0.5, 0.5, 0.5] },
    ],
  });
  t.same(cast.json.outputs?.[0]?.data, [1.5, 2.5, 3.5, 4.5], 'a TS stage input takes any datatype');
});

t.test('infer: chained models and function stages (add_sub), a method without a batch dim (matmul)', async (t) => {
  const three = (a: number[], b: number[], c: number[]) => ['x1', 'x2', 'x3'].map((name, i) => ({ name, datatype: 'FP32', shape: [2, 2, 2], data: [a, b, c][i] }));
  const complex = await postJson(port, '/v2/models/add_sub.add_sub_complex/infer', { inputs: three([1, 2, 3, 4, 1, 1, 1, 1], ones(8), [4, 3, 2, 1, 0, 0, 0, 0]) });
  t.same(complex.json.outputs?.[0]?.data, [0, 2, 4, 6, 4, 4, 4, 4], 'x1 + x2 + 1 - x3 + 1 per instance');
  const only = await postJson(port, '/v2/models/add_sub/infer', { inputs: three(ones(8), ones(8), ones(8)) });
  t.same(only.json.outputs?.[0]?.data, ones(8), 'add_sub = its first method, add_sub_only_model');
  const x = Array.from({ length: 128 * 96 }, (_, i) => ((i % 13) - 6) / 8);
  const y = Array.from({ length: 8 * 96 }, (_, i) => ((i % 5) - 2) / 4);
  const mm = await postJson(port, '/v2/models/matmul/infer', {
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [128, 96], data: x },
      { name: 'y', datatype: 'FP32', shape: [8, 96], data: y },
    ],
  });
  t.equal(mm.status, 200, JSON.stringify(mm.json));
  t.same([mm.json.outputs?.[0]?.shape, mm.json.outputs?.[0]?.data?.length], [[16], 16], 'the tensors are one instance, the output as the method returns it');
});

t.test('infer: every datatype in JSON through an identity model (BOOL as booleans, BYTES as strings, FP16 as numbers)', async (t) => {
  const values: Record<string, unknown[]> = {
    bool: [true, false, false, true],
    int8: [-128, 127, 0, -1],
    int16: [-32768, 32767, 1, 2],
    int32: [-2147483648, 2147483647, 3, 4],
    int64: ['-9223372036854775808', 9007199254740991, 5, -6],
    uint8: [0, 255, 7, 8],
    uint16: [0, 65535, 9, 10],
    uint32: [0, 4294967295, 11, 12],
    uint64: ['18446744073709551615', 0, 13, 14],
    float16: [1, -2.5, 65504, 0.099975586],
    float32: [0.1, -1e30, 3.5, -0],
    float64: [0.1, 1e300, -2.25, 5e-324],
    string: ['a', '', 'héllo', '{"q": "\\""}'],
  };
  const datatype: Record<string, string> = {
    bool: 'BOOL', int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64', uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32',
    uint64: 'UINT64', float16: 'FP16', float32: 'FP32', float64: 'FP64', string: 'BYTES',
  };
  t.same(Object.keys(values).sort(), [...ONNX_DTYPES].sort(), 'every dtype the identity models cover');
  for (const d of ONNX_DTYPES) {
    const r = await postJson(port, `/v2/models/ident.id_${d}/infer`, { inputs: [{ name: 'x', datatype: datatype[d], shape: [2, 2], data: [values[d]!.slice(0, 2), values[d]!.slice(2)] }] });
    t.equal(r.status, 200, `${d}: ${r.http.text}`);
    const out = r.json.outputs![0]!;
    t.same([out.name, out.datatype, out.shape], ['y', datatype[d], [2, 2]], d);
    // float32 is written in its shortest round-trip text: 0.1 reads back as 0.1
    const expected = values[d]!.map((v) => (d === 'int64' || d === 'uint64' ? Number(v) : v));
    if (d === 'float16') t.same(out.data, [1, -2.5, 65500, 0.1], 'FP16: numbers in, the shortest text of the same half float out');
    else t.same(out.data, expected, d);
  }
  const exact = await postJson(port, '/v2/models/ident.id_int64/infer', { inputs: [{ name: 'x', datatype: 'INT64', shape: [1, 2], data: ['9223372036854775807', '-9223372036854775807'] }] });
  t.match(exact.http.text, /"data":\[9223372036854775807,-9223372036854775807\]/, 'INT64 is written exactly');
});

t.test('infer: outputs select and order the outputs; one bad image fails the whole request', async (t) => {
  const { picture, bytesChunk, postBinary } = await import('./rest/fixtures/kserve.js');
  const img = await picture('png', 1);
  const both = await postBinary(port, '/v2/models/resnet.classify_top5/infer', {
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 4 + img.length } }],
    outputs: [{ name: 'scores' }, { name: 'labels' }],
  }, [bytesChunk([img])]);
  t.equal(both.status, 200, both.http.text);
  t.same(both.json.outputs!.map((o) => [o.name, o.datatype, o.shape]), [['scores', 'FP32', [1, 5]], ['labels', 'BYTES', [1, 5]]]);
  t.match(both.json.outputs![1]!.data, [/^class_\d+$/]);
  const one = await postBinary(port, '/v2/models/resnet.classify_top5/infer', {
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 4 + img.length } }],
    outputs: [{ name: 'labels' }],
  }, [bytesChunk([img])]);
  t.same(one.json.outputs!.map((o) => o.name), ['labels']);
  const bad = await postBinary(port, '/v2/models/resnet/infer', {
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: 8 + img.length + 3 } }],
  }, [bytesChunk(['abc', img])]);
  t.equal(bad.status, 500);
  t.match(bad.json, { error: /batch element 0: .*cannot decode the image/ });
});

t.test('bad requests get {"error"} with the right status, and the server stays live', async (t) => {
  const cases: [string, string, unknown, number, RegExp][] = [
    ['not JSON', '/v2/models/add/infer', '{"inputs": [', 400, /not valid JSON/],
    ['not an object', '/v2/models/add/infer', '[1]', 400, /must be a JSON object/],
    ['no inputs', '/v2/models/add/infer', {}, 400, /"inputs" must be a non-empty array/],
    ['id not a string', '/v2/models/add/infer', { id: 5, inputs: addInputs(ones(4), ones(4)) }, 400, /"id" must be a string/],
    ['bad parameters', '/v2/models/add/infer', { parameters: { a: [1] }, inputs: addInputs(ones(4), ones(4)) }, 400, /"a" must be a string, number or boolean/],
    ['unknown datatype', '/v2/models/add/infer', { inputs: [{ name: 'x1', datatype: 'FLOAT', shape: [1], data: [1] }] }, 400, /unknown datatype "FLOAT"/],
    ['BF16', '/v2/models/add/infer', { inputs: [{ name: 'x1', datatype: 'BF16', shape: [1], data: [1] }] }, 400, /BF16 is not supported/],
    ['bad shape', '/v2/models/add/infer', { inputs: [{ name: 'x1', datatype: 'FP32', shape: [-1], data: [1] }] }, 400, /"shape" must be an array of non-negative integers/],
    ['no data', '/v2/models/add/infer', { inputs: [{ name: 'x1', datatype: 'FP32', shape: [1] }] }, 400, /has no "data"/],
    ['data not a list', '/v2/models/add/infer', { inputs: [{ name: 'x1', datatype: 'FP32', shape: [1], data: 1 }] }, 400, /"data" must be an array/],
    ['count unlike shape', '/v2/models/add/infer', { inputs: addInputs([1, 2, 3], ones(4)) }, 400, /needs 4 elements, data has 3/],
    ['wrong element', '/v2/models/add/infer', { inputs: addInputs([1, 2, 3, 'x'], ones(4)) }, 400, /element 3 is "x", FP32 takes numbers/],
    ['BOOL as number 2', '/v2/models/ident.id_bool/infer', { inputs: [{ name: 'x', datatype: 'BOOL', shape: [1, 2], data: [2, 0] }] }, 400, /BOOL takes true or false/],
    ['wrong datatype for the model', '/v2/models/add/infer', { inputs: [{ name: 'x1', datatype: 'INT32', shape: [1, 2, 2], data: ones(4) }, addInputs(ones(4), ones(4))[1]] }, 400, /takes FP32, got INT32/],
    ['shape the model refuses', '/v2/models/add/infer', { inputs: addInputs(ones(3), ones(3), [1, 3]) }, 400, /shape/],
    ['missing input', '/v2/models/add/infer', { inputs: addInputs(ones(4), ones(4)).slice(0, 1) }, 400, /needs input "x2"/],
    ['unknown input', '/v2/models/add/infer', { inputs: [...addInputs(ones(4), ones(4)), { name: 'z', datatype: 'FP32', shape: [1], data: [1] }] }, 400, /no input "z"/],
    ['unknown output', '/v2/models/add/infer', { inputs: addInputs(ones(4), ones(4)), outputs: [{ name: 'q' }] }, 400, /no output "q"/],
    ['classification', '/v2/models/add/infer', { inputs: addInputs(ones(4), ones(4)), outputs: [{ name: 'y', parameters: { classification: 2 } }] }, 400, /classification extension is not supported/],
    ['batch sizes differ', '/v2/models/add/infer', { inputs: [addInputs(ones(4), ones(4))[0], { name: 'x2', datatype: 'FP32', shape: [2, 2, 2], data: ones(8) }] }, 400, /leading dims of batched inputs must agree/],
    ['unknown model', '/v2/models/nope/infer', { inputs: addInputs(ones(4), ones(4)) }, 404, /servable 'nope' is not loaded/],
    ['unknown method', '/v2/models/add.nope/infer', { inputs: addInputs(ones(4), ones(4)) }, 404, /no method "nope"/],
    ['unknown version', '/v2/models/add/versions/4/infer', { inputs: addInputs(ones(4), ones(4)) }, 404, /no loaded version 4/],
    ['malformed version', '/v2/models/add/versions/latest/infer', { inputs: addInputs(ones(4), ones(4)) }, 400, /model version "latest"/],
    ['a stage refuses its input (ServingError E_INVALID_ARGUMENT)', '/v2/models/add.add_cast/infer', { inputs: [{ name: 'x1', datatype: 'BYTES', shape: [1, 2, 2], data: ['a', 'b', 'c', 'd'] }, addInputs(ones(4), ones(4))[1]] }, 400, /add_cast takes numeric inputs .* got bytes for x1/],
  ];
  for (const [what, path, body, status, message] of cases) {
    const r = await postJson(port, path, body);
    t.equal(r.status, status, `${what}: ${r.http.text}`);
    t.match(r.json, { error: message }, what);
    t.same(Object.keys(r.json), ['error'], `${what}: only "error"`);
  }
  const deadline = await postJson(port, '/v2/models/add/infer', { inputs: addInputs(ones(4), ones(4)) }, { 'x-deadline-ms': 'soon' });
  t.same([deadline.status, Object.keys(deadline.json)], [400, ['error']], 'a framing refusal is a v2 error too');
  const wrongMethod = await get('/v2/models/add/infer');
  t.same([wrongMethod.status, wrongMethod.headers['allow']], [405, 'POST']);
  t.match(wrongMethod.json, { error: /only answers POST/ });
  const postMeta = await request({ port }, '/v2/models/add', { method: 'POST', body: '{}' });
  t.same([postMeta.status, postMeta.headers['allow']], [405, 'GET']);
  t.match(postMeta.json, { error: /only answers GET/ });
  const nothing = await get('/v2/models');
  t.equal(nothing.status, 404);
  t.match(nothing.json, { error: /nothing at this path; KServe v2 serves GET \/v2/ });
  t.equal((await request({ port }, '/v2/repository/index', { method: 'POST', body: '{}' })).status, 404);
  t.equal((await request({ port }, '/v2/models/add/infer', { method: 'PUT', body: '{}' })).status, 405);

  t.same((await get('/v2/health/live')).json, { live: true }, 'still live');
  const after = await postJson(port, '/v2/models/add/infer', { inputs: addInputs([1, 2, 3, 4], ones(4)) });
  t.same(after.json.outputs?.[0]?.data, [2, 3, 4, 5], 'and still answering');
});

t.test('v2 requests are counted like others, under transport "rest"; MindSpore routes are unchanged', async (t) => {
  const series = 'actorserve_requests_total{servable="add",method="add_common",version="1",transport="rest"}';
  const count = async (): Promise<number> => {
    const line = (await get('/metrics')).text.split('\n').find((l) => l.startsWith(series + ' '));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  };
  const before = await count();
  await postJson(port, '/v2/models/add/infer', { inputs: addInputs(ones(4), ones(4)) });
  const ms = await request({ port }, '/model/add:add_common', { body: '{"instances":[{"x1":[[1,1],[1,1]],"x2":[[1,1],[1,1]]}]}' });
  t.same(ms.json, { instances: [{ y: [[2, 2], [2, 2]] }] });
  t.equal(await count(), before + 2);
  const unknown = await get('/nowhere');
  t.match(unknown.json, { error_msg: /\/v2\/models\/\{name\}\/infer/ }, 'the 404 list names the v2 routes');
});
