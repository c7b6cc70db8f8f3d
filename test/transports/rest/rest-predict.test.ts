// End to end: a real engine and RESTful server on 127.0.0.1 (port 0); requests with node:http.
// Covers the seed example, every dtype through b64 and msgpack, plain JSON forms with the
// model's dtype and MindSpore's defaults, float printing, and the order of 1000 instances.
import t from 'tap';
import { Packr, Unpackr } from 'msgpackr';
import { startRestfulServer, type RestServer } from '../../../dist/transports/rest/server.js';
import { SEED_BODY, SEED_REPLY, request, startEngine, type EngineFixture, type PredictReply } from './fixtures/rest.js';

let env: EngineFixture;
let rest: RestServer;
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

t.before(async () => {
  env = await startEngine('predict');
  rest = await startRestfulServer(env.engine, '127.0.0.1:0');
});
t.teardown(async () => {
  await rest?.close();
  await env?.stop();
});

const post = (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
  request({ port: rest.port }, path, { body, headers });
const b64 = (a: ArrayBufferView): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

t.test('the server reports where it listens', async (t) => {
  t.match(rest.address, /^127\.0\.0\.1:\d+$/);
  t.ok(rest.port > 0);
  t.equal(rest.address, `127.0.0.1:${rest.port}`);
});

t.test('seed example: /model/add:add_common', async (t) => {
  const r = await post('/model/add:add_common', SEED_BODY);
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^application\/json/);
  t.same(r.json, SEED_REPLY);
  t.equal(r.text, '{"instances":[{"y":[[2.0,2.0],[2.0,2.0]]}]}', 'floats keep their .0, as MindSpore prints them');
});

t.test('version in the URL, both orders, and version 0 = newest', async (t) => {
  for (const path of ['/model/add/version/1:add_common', '/model/add/version/0:add_common', '/version/1/model/add:add_common']) {
    const r = await post(path, SEED_BODY);
    t.equal(r.status, 200, path);
    t.same(r.json, SEED_REPLY, path);
  }
});

t.test('a UTF-8 byte order mark before the body is skipped (as MindSpore does)', async (t) => {
  const r = await post('/model/add:add_common', `\uFEFF${SEED_BODY}`);
  t.equal(r.status, 200);
  t.same(r.json, SEED_REPLY);
});

t.test('a query string is ignored', async (t) => {
  const r = await post('/model/add:add_common?trace=1', SEED_BODY);
  t.equal(r.status, 200);
  t.same(r.json, SEED_REPLY);
});

t.test('a function stage before the model: add_cast takes ints', async (t) => {
  const r = await post('/model/add:add_cast', '{"instances":[{"x1":[[1,2],[3,4]],"x2":[[10,20],[30,40]]}]}');
  t.equal(r.status, 200);
  t.same(r.json, { instances: [{ y: [[11, 22], [33, 44]] }] });
});

// Each dtype: raw data for one instance of shape [2] and the JSON text the reply must hold.
const DTYPE_CASES: { dtype: string; type: string; data: ArrayBufferView; json: string }[] = [
  { dtype: 'bool', type: 'bool', data: Uint8Array.of(1, 0), json: '[true,false]' },
  { dtype: 'int8', type: 'int8', data: Int8Array.of(-128, 127), json: '[-128,127]' },
  { dtype: 'int16', type: 'int16', data: Int16Array.of(-32768, 32767), json: '[-32768,32767]' },
  { dtype: 'int32', type: 'int32', data: Int32Array.of(-2147483648, 2147483647), json: '[-2147483648,2147483647]' },
  { dtype: 'int64', type: 'int64', data: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n), json: '[-9223372036854775808,9223372036854775807]' },
  { dtype: 'uint8', type: 'uint8', data: Uint8Array.of(0, 255), json: '[0,255]' },
  { dtype: 'uint16', type: 'uint16', data: Uint16Array.of(0, 65535), json: '[0,65535]' },
  { dtype: 'uint32', type: 'uint32', data: Uint32Array.of(0, 4294967295), json: '[0,4294967295]' },
  { dtype: 'uint64', type: 'uint64', data: BigUint64Array.of(0n, 2n ** 64n - 1n), json: '[0,18446744073709551615]' },
  // 0x3e00 = 1.5; 0x2e66 = 0.0999755859375, the float16 nearest 0.1, printed shortest
  { dtype: 'float16', type: 'fp16', data: Uint16Array.of(0x3e00, 0x2e66), json: '[1.5,0.1]' },
  { dtype: 'float32', type: 'fp32', data: Float32Array.of(3.2, -1e-7), json: '[3.2,-1e-7]' },
  { dtype: 'float64', type: 'float64', data: Float64Array.of(0.1, 1e300), json: '[0.1,1e+300]' },
];

t.test('every numeric dtype through b64 into an identity model', async (t) => {
  for (const c of DTYPE_CASES) {
    const body = JSON.stringify({ instances: [{ x: { b64: b64(c.data), type: c.type, shape: [2] } }] });
    const r = await post(`/model/ident:id_${c.dtype}`, body);
    t.equal(r.status, 200, `${c.dtype}: ${r.text}`);
    t.equal(r.text, `{"instances":[{"y":${c.json}}]}`, c.dtype);
  }
});

t.test('string and bytes through b64', async (t) => {
  let r = await post('/model/ident:echo', JSON.stringify({ instances: { x: { b64: Buffer.from('héllo').toString('base64'), type: 'str' } } }));
  t.equal(r.status, 200, r.text);
  t.equal(r.text, '{"instances":[{"y":"héllo"}]}');
  r = await post('/model/ident:echo', JSON.stringify({ instances: { x: { b64: 'AP8B' } } }));
  t.equal(r.status, 200, r.text);
  t.equal(r.text, '{"instances":[{"y":{"b64":"AP8B"}}]}', 'bytes (the default b64 type) come back as {"b64": ...}');
  r = await post('/model/ident:echo', JSON.stringify({ instances: { x: { b64: '', type: 'bytes', shape: [1] } } }));
  t.equal(r.status, 200, r.text);
  t.equal(r.text, '{"instances":[{"y":[{"b64":""}]}]}', 'an empty bytes value of shape [1]');
  r = await post('/model/ident:echo', '{"instances":{"x":[{"b64":"AP8B"}]}}');
  t.equal(r.status, 200, r.text);
  t.equal(r.text, '{"instances":[{"y":[{"b64":"AP8B"}]}]}', "MindSpore's list form of bytes of shape [1] round-trips");
  r = await post('/model/ident:echo', JSON.stringify({ instances: { x: [{ b64: b64(Float32Array.of(1.5, -2)), type: 'fp32', shape: [2] }] } }));
  t.equal(r.status, 200, r.text);
  t.equal(r.text, '{"instances":[{"y":[[1.5,-2.0]]}]}', 'a listed tensor object gets a leading dim of 1');
  r = await post('/model/ident:id_string', JSON.stringify({ instances: { x: ['ab', 'ü'] } }));
  t.equal(r.status, 200, r.text);
  t.equal(r.text, '{"instances":[{"y":["ab","ü"]}]}', 'JSON strings into a string model');
});

t.test('b64 into a function stage keeps its dtype and shape; zero-sized tensors', async (t) => {
  let r = await post('/model/ident:echo', JSON.stringify({ instances: { x: { b64: b64(Int16Array.of(1, 2, 3, 4, 5, 6)), type: 'int16', shape: [2, 3] } } }));
  t.equal(r.text, '{"instances":[{"y":[[1,2,3],[4,5,6]]}]}');
  r = await post('/model/ident:echo', JSON.stringify({ instances: { x: { b64: '', type: 'fp32', shape: [2, 0] } } }));
  t.equal(r.text, '{"instances":[{"y":[[],[]]}]}');
  r = await post('/model/ident:echo', JSON.stringify({ instances: { x: { b64: b64(Float64Array.of(2.5)), type: 'fp64' } } }));
  t.equal(r.text, '{"instances":[{"y":2.5}]}', 'no shape: a scalar');
});

t.test('NaN, ±Infinity and -0 print as documented', async (t) => {
  const data = Float32Array.of(NaN, Infinity, -Infinity, -0);
  const r = await post('/model/ident:echo', JSON.stringify({ instances: { x: { b64: b64(data), type: 'fp32', shape: [4] } } }));
  t.equal(r.status, 200);
  t.equal(r.text, '{"instances":[{"y":["NaN","Infinity","-Infinity",-0.0]}]}');
});

t.test('plain JSON numbers take the model dtype (range-checked)', async (t) => {
  const cases: [string, string, string][] = [
    ['int8', '[-128,127]', '[-128,127]'],
    ['uint8', '[0,255]', '[0,255]'],
    ['int64', '[-9007199254740991,9007199254740991]', '[-9007199254740991,9007199254740991]'],
    ['uint64', '[0,9007199254740991]', '[0,9007199254740991]'],
    ['float16', '[1.5,0.1]', '[1.5,0.1]'],
    ['float32', '[1,2]', '[1.0,2.0]'],
    ['float32', '[3.2,0.30000001192092896]', '[3.2,0.3]'],
    ['float64', '[0.1,0.30000000000000004]', '[0.1,0.30000000000000004]'],
    ['bool', '[true,false]', '[true,false]'],
  ];
  for (const [dtype, sent, got] of cases) {
    const r = await post(`/model/ident:id_${dtype}`, `{"instances":[{"x":${sent}}]}`);
    t.equal(r.status, 200, `${dtype} ${sent}: ${r.text}`);
    t.equal(r.text, `{"instances":[{"y":${got}}]}`, `${dtype} ${sent}`);
  }
});

t.test('plain JSON values without a model dtype get MindSpore defaults', async (t) => {
  const dtypeOf = async (value: string): Promise<{ dtype: string; shape: number[] }> => {
    const r = await post('/model/ident:echo', `{"instances":{"x":${value}}}`, { accept: 'application/msgpack' });
    t.equal(r.status, 200, value);
    t.match(r.headers['content-type'], /^application\/msgpack/);
    const y = (unpackr.unpack(r.body) as { instances: { y: { dtype: string; shape: number[] } }[] }).instances[0]!.y;
    return { dtype: y.dtype, shape: y.shape };
  };
  t.same(await dtypeOf('7'), { dtype: 'int32', shape: [] });
  t.same(await dtypeOf('2.5'), { dtype: 'float32', shape: [] });
  t.same(await dtypeOf('[[1,2],[3,4]]'), { dtype: 'int32', shape: [2, 2] });
  t.same(await dtypeOf('[[1.5,2],[3,4]]'), { dtype: 'float32', shape: [2, 2] });
  // integer-ness by syntax (native parser; MindSpore's rule): a number written with '.' or an
  // exponent is a float, even when integral
  t.same(await dtypeOf('1.0'), { dtype: 'float32', shape: [] });
  t.same(await dtypeOf('1e2'), { dtype: 'float32', shape: [] });
  t.same(await dtypeOf('[[1.0,2],[3,4]]'), { dtype: 'float32', shape: [2, 2] }, 'one float makes the list float32 (MindSpore refuses the mix)');
  t.same(await dtypeOf('true'), { dtype: 'bool', shape: [] });
  t.same(await dtypeOf('[true,false,true]'), { dtype: 'bool', shape: [3] });
  t.same(await dtypeOf('"text"'), { dtype: 'string', shape: [] });
  t.same(await dtypeOf('["a","b"]'), { dtype: 'string', shape: [2] });
  const r = await post('/model/ident:echo', '{"instances":[{"x":7},{"x":"seven"},{"x":[[true]]}]}');
  t.equal(r.text, '{"instances":[{"y":7},{"y":"seven"},{"y":[[true]]}]}');
});

t.test('1000 instances in one request come back in order', async (t) => {
  const instances = Array.from({ length: 1000 }, (_, i) => ({ x1: [[i, i], [i, -i]], x2: [[1, 1], [1, 1]] }));
  const r = await post('/model/add:add_common', JSON.stringify({ instances }));
  t.equal(r.status, 200);
  const out = (r.json as PredictReply).instances as { y: number[][] }[];
  t.equal(out.length, 1000);
  const wrong = out.findIndex((o, i) => o.y[0]![0] !== i + 1 || o.y[1]![1] !== 1 - i);
  t.equal(wrong, -1, 'every instance i has y = i + 1 (and 1 - i)');
});

t.test('some instances fail: 200, error_msg in their place', async (t) => {
  const r = await post('/model/add:add_common', '{"instances":[{"x1":[[1,1],[1,1]],"x2":[[1,1],[1,1]]},{"x1":[1,2],"x2":[[1,1],[1,1]]},{"x1":[[0,0],[0,0]],"x2":[[1,1],[1,1]]}]}');
  t.equal(r.status, 200);
  const { instances } = r.json as PredictReply;
  t.same(instances?.[0], { y: [[2, 2], [2, 2]] });
  t.match(instances?.[1], { error_msg: /takes 4 elements per instance/ });
  t.same(instances?.[2], { y: [[1, 1], [1, 1]] });
});

t.test('msgpack request and reply: every dtype round-trips bit for bit', async (t) => {
  const cases = [...DTYPE_CASES, { dtype: 'float32', type: 'fp32', data: Float32Array.of(NaN, -Infinity), json: '' }];
  for (const c of cases) {
    const bytes = Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength);
    const body = packr.pack({ instances: [{ x: { dtype: c.dtype, shape: [2], data: bytes } }] });
    const r = await post(`/model/ident:id_${c.dtype}`, body, { 'content-type': 'application/msgpack', accept: 'application/msgpack' });
    t.equal(r.status, 200, c.dtype);
    const y = (unpackr.unpack(r.body) as { instances: { y: { dtype: string; shape: number[]; data: Uint8Array } }[] }).instances[0]!.y;
    t.equal(y.dtype, c.dtype);
    t.same(y.shape, [2]);
    t.ok(Buffer.from(y.data).equals(bytes), `${c.dtype} bytes`);
  }
  // string and bytes tensors: data is a list
  const body = packr.pack({ instances: { x: { dtype: 'string', shape: [2], data: ['ab', 'ü'] } } });
  const r = await post('/model/ident:id_string', body, { 'content-type': 'application/msgpack', accept: 'application/msgpack' });
  t.same(unpackr.unpack(r.body), { instances: [{ y: { dtype: 'string', shape: [2], data: ['ab', 'ü'] } }] });
  const raw = packr.pack({ instances: { x: Buffer.from([0, 255]) } });
  const r2 = await post('/model/ident:echo', raw, { 'content-type': 'application/msgpack', accept: 'application/msgpack' });
  const y2 = (unpackr.unpack(r2.body) as { instances: { y: { dtype: string; data: Uint8Array[] } }[] }).instances[0]!.y;
  t.equal(y2.dtype, 'bytes', 'a bare bin value is a bytes scalar');
  t.ok(Buffer.from(y2.data[0]!).equals(Buffer.from([0, 255])));
});

t.test('msgpack: plain values, typed arrays, JSON reply, and the seed example', async (t) => {
  const body = packr.pack({ instances: { x1: [[1.5, 1], [1, 1]], x2: [[1, 1], [1, 1]] } });
  let r = await post('/model/add:add_common', body, { 'content-type': 'application/msgpack' });
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^application\/json/, 'JSON reply unless msgpack is accepted');
  t.same(r.json, { instances: [{ y: [[2.5, 2], [2, 2]] }] });
  // msgpackr's typed-array extension (moreTypes) as a tensor map's data
  const typed = new Packr({ useRecords: false, moreTypes: true }).pack({
    instances: { x1: { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }, x2: { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 1, 1, 1) } },
  });
  r = await post('/model/add:add_common', typed, { 'content-type': 'application/msgpack' });
  t.equal(r.status, 200, r.text);
  t.same(r.json, { instances: [{ y: [[2, 3], [4, 5]] }] });
  // a JSON request with a msgpack reply
  r = await post('/model/add:add_common', SEED_BODY, { accept: 'application/msgpack' });
  const y = (unpackr.unpack(r.body) as { instances: { y: { shape: number[]; data: Uint8Array } }[] }).instances[0]!.y;
  t.same(y.shape, [2, 2]);
  t.same([...new Float32Array(new Uint8Array(y.data).buffer)], [2, 2, 2, 2]);
  // a msgpack error reply
  r = await post('/model/add:nope', SEED_BODY, { accept: 'application/msgpack' });
  t.equal(r.status, 404);
  t.match(unpackr.unpack(r.body), { error_msg: /no method "nope"/ });
});

t.test('float32 outputs print shortest round-trip', async (t) => {
  const values = Float32Array.from([0.1, 1 / 3, 123456.789, 1e-30, 3.4028234663852886e38, 16777216, 2 ** -149, 7]);
  const r = await post('/model/ident:echo', JSON.stringify({ instances: { x: { b64: b64(values), type: 'fp32', shape: [values.length] } } }));
  t.equal(r.text, '{"instances":[{"y":[0.1,0.33333334,123456.79,1e-30,3.4028235e+38,16777216.0,1e-45,7.0]}]}');
  const back = Float32Array.from((r.json as PredictReply).instances?.[0]?.y as number[]);
  t.same([...back], [...values], 'every printed value reads back to the same float32');
});
