// Every bad-input class gets an ordinary error reply with a meaningful status and a clear
// message, and the server stays live: after each bad request a good one succeeds.
import t, { type Test } from 'tap';
import http from 'node:http';
import { Packr } from 'msgpackr';
import { startRestfulServer, type RestServer } from '../../../dist/transports/rest/server.js';
import { SEED_BODY, SEED_REPLY, request, startEngine, type EngineFixture, type PredictReply, type RequestOptions } from './fixtures/rest.js';

let env: EngineFixture;
let rest: RestServer;

t.before(async () => {
  env = await startEngine('errors');
  rest = await startRestfulServer(env.engine, '127.0.0.1:0', { maxMsgMbSize: 1 });
});
t.teardown(async () => {
  await rest?.close();
  await env?.stop();
});

const call = (path: string, o: RequestOptions = {}) => request({ port: rest.port }, path, o);

/** Sends a bad request, checks status and message, then checks a good request still works. */
async function expectError(t: Test, name: string, path: string, o: RequestOptions, status: number, message: RegExp): Promise<void> {
  const r = await call(path, o);
  t.equal(r.status, status, `${name}: status (${r.text.slice(0, 200)})`);
  t.match(r.headers['content-type'], /^application\/json/, `${name}: JSON error body`);
  t.match(r.json, { error_msg: message }, `${name}: message`);
  const live = await call('/model/add:add_common', { body: SEED_BODY });
  t.equal(live.status, 200, `${name}: the server is still live`);
  t.same(live.json, SEED_REPLY);
}

type Case = [name: string, path: string, o: RequestOptions, status: number, message: RegExp];

const post = (body: string | Uint8Array, headers: Record<string, string> = {}): RequestOptions => ({ body, headers });
const seedWith = (x1: string): string => `{"instances":{"x1":${x1},"x2":[[1.0,1.0],[1.0,1.0]]}}`;

t.test('URL, route and method errors', async (t) => {
  const cases: Case[] = [
    ['unknown servable', '/model/nope:add_common', post(SEED_BODY), 404, /servable 'nope' is not loaded/],
    ['unknown method', '/model/add:nope', post(SEED_BODY), 404, /no method "nope" \(methods: add_common, add_cast\)/],
    ['unknown version', '/model/add/version/7:add_common', post(SEED_BODY), 404, /no loaded version 7/],
    ['non-numeric version', '/model/add/version/one:add_common', post(SEED_BODY), 400, /version "one" is not an integer/],
    ['negative version', '/model/add/version/-1:add_common', post(SEED_BODY), 400, /version "-1" is not an integer/],
    ['huge version', '/model/add/version/99999999999:add_common', post(SEED_BODY), 400, /is not an integer in \[0, 4294967294\]/],
    ['URL ends after model', '/model', post(SEED_BODY), 400, /names no servable/],
    ['URL ends after model/', '/model/', post(SEED_BODY), 400, /names no servable/],
    ['no method', '/model/add', post(SEED_BODY), 400, /names no method/],
    ['empty method', '/model/add:', post(SEED_BODY), 400, /names no method after ':'/],
    ['bad percent-encoding', '/model/a%zz:m', post(SEED_BODY), 400, /invalid percent-encoding/],
    ['other path', '/v3/models/add/infer', post(SEED_BODY), 404, /there is nothing at "\/v3\/models\/add\/infer"/],
    ['root', '/', {}, 404, /there is nothing at "\/"/],
    ['GET on predict', '/model/add:add_common', { method: 'GET' }, 405, /only answer POST/],
    ['PUT on predict', '/model/add:add_common', { method: 'PUT', body: SEED_BODY }, 405, /only answer POST/],
    ['POST on healthz', '/healthz', post('{}'), 405, /only answers GET/],
    ['internal model method', '/model/add:@call_tensor_add.onnx_0', post(SEED_BODY), 404, /no method/],
  ];
  for (const c of cases) await expectError(t, ...c);
  const r = await call('/model/add:add_common', { method: 'GET' });
  t.equal(r.headers.allow, 'POST', '405 says what is allowed');
});

t.test('body errors', async (t) => {
  const deep = (k: number): string => `{"instances":{"x1":${'['.repeat(k)}1${']'.repeat(k)}}}`;
  const cases: Case[] = [
    ['empty body', '/model/add:add_common', post(''), 400, /body is empty/],
    ['not JSON', '/model/add:add_common', post('{"instances": {"x1": [1, 2'), 400, /invalid JSON: unexpected end of body \(at byte 26\)/],
    ['trailing comma', '/model/add:add_common', post(seedWith('[[1.0, 1.0], [1.0, 1.0],]')), 400, /input 'x1': invalid JSON: unexpected '\]'/],
    ['not UTF-8', '/model/add:add_common', post(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])), 400, /invalid UTF-8 in a string \(at byte 2\)/],
    ['top level is a list', '/model/add:add_common', post('[{"x1": 1}]'), 400, /the body must be a JSON object with an 'instances' key \(at byte 0\)/],
    ['only a byte order mark', '/model/add:add_common', post('\uFEFF'), 400, /invalid JSON: unexpected end of body \(at byte 0\)/],
    ['no instances key', '/model/add:add_common', post('{"inputs": {}}'), 400, /the body has no 'instances' key/],
    ['zero instances', '/model/add:add_common', post('{"instances": []}'), 400, /"instances" is an empty list/],
    ['empty instance', '/model/add:add_common', post('{"instances": {}}'), 400, /instance 0 is an empty object: it names no inputs/],
    ['instances is a number', '/model/add:add_common', post('{"instances": 3}'), 400, /'instances' must be a list of objects or an object \(at byte 14\)/],
    ['instance is a list', '/model/add:add_common', post('{"instances": [[1, 2]]}'), 400, /instance 0 must be an object \(at byte 15\)/],
    ['null value', '/model/add:add_common', post('{"instances": {"x1": null}}'), 400, /instance 0, input 'x1': null is not supported/],
    ['__proto__ input', '/model/add:add_common', post('{"instances": {"__proto__": {"x1": 1}}}'), 400, /key '__proto__' is not allowed/],
    ['__proto__ at top level', '/model/add:add_common', post('{"__proto__": 1, "instances": {"x1": 1}}'), 400, /key '__proto__' is not allowed \(at byte 1\)/],
    ['duplicate input', '/model/add:add_common', post('{"instances": {"x1": 1, "x1": 2}}'), 400, /duplicate key 'x1'/],
    ['nesting 65 deep', '/model/add:add_common', post(deep(63)), 400, /input 'x1': nesting deeper than 64 levels/],
    ['nesting 100000 deep', '/model/add:add_common', post(deep(100_000)), 400, /deeper than 64 levels/],
    ['ragged list', '/model/add:add_common', post(seedWith('[[1.0, 1.0], [1.0]]')), 400, /input 'x1': ragged list at \[1\]: expected 2 elements, got 1/],
    ['ragged depth', '/model/add:add_common', post(seedWith('[[1.0, 1.0], 1.0]')), 400, /ragged list at \[1\]: expected a list of 2 elements, got a number/],
    ['mixed kinds', '/model/add:add_common', post(seedWith('[[1.0, 1.0], [1.0, "1"]]')), 400, /mixed element kinds at \[1,1\]: expected a number, got a string/],
    ['object inside a list', '/model/add:add_common', post(seedWith('[[1.0, 1.0], {"b64": "AAAA"}]')), 400, /objects are not supported inside lists at \[1\]/],
    ['two b64 objects in a list', '/model/add:add_common', post(seedWith('[{"b64": "AAAA"}, {"b64": "AAAA"}]')), 400, /a list may hold one \{"b64": \.\.\.\} object/],
    ['number too large for a double', '/model/add:add_common', post(seedWith('[[1e999, 1.0], [1.0, 1.0]]')), 400, /invalid JSON: number out of range/],
  ];
  for (const c of cases) await expectError(t, ...c);
  const ok64 = await call('/model/add:add_common', post(deep(62)));
  t.notMatch((ok64.json as PredictReply).error_msg, /deeper/, 'nesting of exactly 64 passes the depth check');
});

t.test('dtype, shape and b64 errors', async (t) => {
  const f32 = (a: number[]): string => Buffer.from(Float32Array.from(a).buffer).toString('base64');
  const b64x1 = (obj: object): string => `{"instances":{"x1":${JSON.stringify(obj)},"x2":[[1.0,1.0],[1.0,1.0]]}}`;
  const cases: Case[] = [
    ['strings into a float model', '/model/add:add_common', post(seedWith('[["a","b"],["c","d"]]')), 400, /input .x1. takes float32, got strings/],
    // typed values (bools, a numeric b64 type) reach the runtime as they are: a model input that is not declared refuses another dtype
    ['bools into a float model', '/model/add:add_common', post(seedWith('[[true,false],[true,false]]')), 400, /method input 'x1': Model 'tensor_add.onnx' input 0 \('x1'\) takes float32, got bool$/],
    ['b64 of another dtype', '/model/add:add_common', post(b64x1({ b64: Buffer.from(Int32Array.of(1, 2, 3, 4).buffer).toString('base64'), type: 'int32', shape: [2, 2] })), 400, /method input 'x1': Model 'tensor_add.onnx' input 0 \('x1'\) takes float32, got int32$/],
    ['b64 without type into a float model', '/model/add:add_common', post(b64x1({ b64: f32([1, 2, 3, 4]) })), 400, /holds bytes \(the default type; set "type": "float32"\)/],
    ['wrong size (plain)', '/model/add:add_common', post(seedWith('[[1.0, 1.0, 1.0]]')), 400, /takes 4 elements per instance \(shape \[2, 2\]\), got 3/],
    ['wrong size (b64 shape)', '/model/add:add_common', post(b64x1({ b64: f32([1, 2, 3, 4, 5, 6]), type: 'fp32', shape: [3, 2] })), 400, /takes 4 elements per instance/],
    ['b64 size does not match shape', '/model/add:add_common', post(b64x1({ b64: f32([1, 2, 3]), type: 'fp32', shape: [2, 2] })), 400, /holds 12 bytes, but float32 of shape \[2, 2\] needs 16/],
    ['invalid base64 characters', '/model/add:add_common', post(b64x1({ b64: '@@@@', type: 'fp32', shape: [1] })), 400, /not valid base64/],
    ['base64 length not a multiple of 4', '/model/add:add_common', post(b64x1({ b64: 'AAAAA', type: 'fp32', shape: [1] })), 400, /not valid base64/],
    ['padding in the middle', '/model/add:add_common', post(b64x1({ b64: 'AA==AAAA', type: 'fp32', shape: [1] })), 400, /not valid base64/],
    ['b64 not a string', '/model/add:add_common', post(b64x1({ b64: 12 })), 400, /'b64' must be a string/],
    ['b64 missing', '/model/add:add_common', post(b64x1({ type: 'fp32' })), 400, /'b64' is missing in a \{"b64": \.\.\.\} object/],
    ['b64 object with an extra key', '/model/add:add_common', post(b64x1({ b64: '', type: 'fp32', dims: [1] })), 400, /unexpected key 'dims' in a \{"b64": \.\.\.\} object \(allowed: b64, type, shape\)/],
    ['unknown b64 type', '/model/add:add_common', post(b64x1({ b64: '', type: 'float8' })), 400, /"type" must be one of .*got "float8"/],
    ['empty b64 type', '/model/add:add_common', post(b64x1({ b64: '', type: '' })), 400, /"type" must be one of/],
    ['non-string b64 type', '/model/add:add_common', post(b64x1({ b64: '', type: 5 })), 400, /'type' must be a string/],
    ['negative shape', '/model/add:add_common', post(b64x1({ b64: '', type: 'fp32', shape: [2, -5] })), 400, /'shape' must be a list of non-negative integers/],
    ['fractional shape', '/model/add:add_common', post(b64x1({ b64: '', type: 'fp32', shape: [1.5] })), 400, /'shape' must be a list of non-negative integers/],
    ['shape as a string', '/model/add:add_common', post(b64x1({ b64: '', type: 'fp32', shape: '[2]' })), 400, /'shape' must be a list of non-negative integers/],
    ['shape product overflows', '/model/add:add_common', post(b64x1({ b64: '', type: 'fp32', shape: [65536, 65536] })), 400, /more than 2\^31-1 elements/],
    ['str b64 of two elements', '/model/ident:echo', post('{"instances":{"x":{"b64":"AAAA","type":"str","shape":[2]}}}'), 400, /holds one value, so its shape must have one element/],
    ['int out of the model range', '/model/ident:id_int8', post('{"instances":{"x":[1,128]}}'), 400, /element \[1\] \(128\) is out of the int8 range \[-128, 127\]/],
    ['negative into uint', '/model/ident:id_uint32', post('{"instances":{"x":[1,-1]}}'), 400, /out of the uint32 range/],
    ['non-integer into an int model', '/model/ident:id_int32', post('{"instances":{"x":[1,1.5]}}'), 400, /input .x. takes int32, but element \[1\] is 1.5, not an integer/],
    ['int64 beyond 2^53 in JSON', '/model/ident:id_int64', post('{"instances":{"x":[1,9007199254740993]}}'), 400, /out of the int64 range.*send them as b64/],
    ['float32 overflow', '/model/ident:id_float32', post('{"instances":{"x":[1,1e39]}}'), 400, /out of the float32 range/],
    ['float16 overflow', '/model/ident:id_float16', post('{"instances":{"x":[1,70000]}}'), 400, /out of the float16 range ±65504/],
    ['default int32 overflow', '/model/ident:echo', post('{"instances":{"x":3000000000}}'), 400, /out of the int32 range/],
    ['missing input', '/model/add:add_common', post('{"instances":{"x1":[[1.0,1.0],[1.0,1.0]]}}'), 400, /needs input 'x2'/],
    ['extra input', '/model/add:add_common', post('{"instances":{"x1":[[1.0,1.0],[1.0,1.0]],"x2":[[1.0,1.0],[1.0,1.0]],"x3":1}}'), 400, /has no input 'x3'/],
  ];
  for (const c of cases) await expectError(t, ...c);
});

t.test('every instance failing: error status; one message when they agree', async (t) => {
  const bad = '{"x1":[1.0],"x2":[[1.0,1.0],[1.0,1.0]]}';
  let r = await call('/model/add:add_common', post(`{"instances":[${bad},${bad}]}`));
  t.equal(r.status, 400);
  t.match(r.json, { error_msg: /takes 4 elements per instance/ });
  t.notOk('instances' in (r.json as PredictReply), 'identical failures collapse into one error_msg');
  r = await call('/model/add:add_common', post(`{"instances":[${bad},{"x1":[[1.0,1.0],[1.0,1.0]]}]}`));
  t.equal(r.status, 400);
  t.equal((r.json as PredictReply).instances?.length, 2, 'different failures keep the per-instance list');
});

t.test('msgpack errors', async (t) => {
  const mp = (body: Uint8Array): RequestOptions => post(body, { 'content-type': 'application/msgpack' });
  const packr = new Packr({ useRecords: false });
  const records = new Packr({ useRecords: true }).pack({ instances: [{ x: 1 }, { x: 2 }] });
  const cases: Case[] = [
    ['truncated msgpack', '/model/ident:echo', mp(Buffer.from([0x81, 0xa9, 0x61, 0x62])), 400, /msgpack body is malformed: it ends in the middle of a value/],
    ['huge announced array', '/model/ident:echo', mp(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01])), 400, /announces 4294967295 entries but only 1 bytes follow/],
    ['trailing bytes', '/model/ident:echo', mp(Buffer.concat([packr.pack({ instances: { x: 1 } }), Buffer.from([0x01])])), 400, /1 bytes follow the end of the value/],
    ['records extension', '/model/ident:echo', mp(records), 400, /extension type 114 is not accepted/],
    ['timestamp extension', '/model/ident:echo', mp(packr.pack({ instances: { x: new Date(0) } })), 400, /extension type -1 is not accepted/],
    ['__proto__ key', '/model/ident:echo', mp(packr.pack(JSON.parse('{"instances":{"__proto__":{"x":1}}}'))), 400, /"__proto__" map key/],
    ['deep nesting', '/model/ident:echo', mp(Buffer.alloc(100, 0x91)), 400, /nest deeper than 64 levels/],
    ['empty body', '/model/ident:echo', mp(Buffer.alloc(0)), 400, /body is empty/],
    ['bad tensor dtype', '/model/ident:echo', mp(packr.pack({ instances: { x: { dtype: 'float8', data: Buffer.alloc(1) } } })), 400, /"dtype" must be one of/],
    ['tensor data size', '/model/ident:echo', mp(packr.pack({ instances: { x: { dtype: 'float32', shape: [2], data: Buffer.alloc(7) } } })), 400, /"data" holds 7 bytes, but float32 of shape \[2\] needs 8/],
    ['tensor map extra key', '/model/ident:echo', mp(packr.pack({ instances: { x: { dtype: 'float32', data: Buffer.alloc(4), name: 'x' } } })), 400, /only have the keys "dtype", "shape" and "data"/],
    ['numeric data not binary', '/model/ident:echo', mp(packr.pack({ instances: { x: { dtype: 'float32', data: [1, 2] } } })), 400, /must be binary/],
    ['string data count', '/model/ident:echo', mp(packr.pack({ instances: { x: { dtype: 'string', shape: [3], data: ['a'] } } })), 400, /"data" holds 1 values, but shape \[3\] needs 3/],
  ];
  for (const c of cases) await expectError(t, ...c);
});

t.test('header and deadline errors', async (t) => {
  await expectError(t, 'headers over the limit', '/model/add:add_common', { body: SEED_BODY, headers: { 'x-padding': 'a'.repeat(20_000) } }, 431, /more than the limit of 16384/);
  await expectError(t, 'bad deadline header', '/model/add:add_common', { body: SEED_BODY, headers: { 'x-deadline-ms': 'soon' } }, 400, /X-Deadline-Ms header must be a positive number/);
  await expectError(t, 'deadline passes', '/model/ident:slow', { body: '{"instances":{"x":1}}', headers: { 'x-deadline-ms': '200' } }, 504, /did not complete within its deadline of 200 ms/);
});

t.test('bodies over the limit get 413 without being read', async (t) => {
  const limit = 1024 * 1024;
  // declared Content-Length over the limit: refused at once
  const big = Buffer.alloc(limit + 1, 0x20);
  await expectError(t, 'Content-Length over the limit', '/model/add:add_common', post(big), 413, new RegExp(`is ${limit + 1} bytes, more than the limit of ${limit} bytes`));
  // chunked: refused once it passes the limit
  await expectError(t, 'chunked body over the limit', '/model/add:add_common', { body: Buffer.alloc(3 * limit, 0x20), chunked: 64 * 1024 }, 413, /passed \d+ bytes, more than the limit of 1048576 bytes/);
  // a body announced as 100 MiB that never comes: refused before any byte
  const r = await new Promise<number>((resolve, reject) => {
    const req = http.request({ port: rest.port, method: 'POST', path: '/model/add:add_common', headers: { 'content-length': 100 * 1024 * 1024 }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.write('{');
  });
  t.equal(r, 413, 'a huge Content-Length is refused before its body arrives');
});

t.test('a client that goes away mid-request cancels it and does not disturb the server', async (t) => {
  const ac = new AbortController();
  const pending = fetch(`http://127.0.0.1:${rest.port}/model/ident:slow`, { method: 'POST', body: '{"instances":{"x":1}}', signal: ac.signal }).catch((e: Error) => e.name);
  // wait until the request is inside its 1.5 s stage (on a loaded machine it may take a while to arrive)
  const ident = env.engine.runtime('ident');
  for (let i = 0; i < 1000 && ident.stats.inflight === 0; i++) await new Promise((r) => setTimeout(r, 5));
  t.equal(ident.stats.inflight, 1, 'the slow request is in flight');
  ac.abort();
  t.equal(await pending, 'AbortError');
  // the engine ends the request when its client leaves (long before the 1.5 s stage is done)
  for (let i = 0; i < 50 && ident.stats.inflight > 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(ident.stats.inflight, 0, 'the request ended when its client went away');
  t.match(env.engine.metrics!.render(), /actorserve_request_failures_total\{servable="ident",method="slow",version="1",transport="rest",code="E_CANCELLED"\} 1\n/);
  // a client that stops in the middle of its body
  await new Promise<void>((resolve) => {
    const req = http.request({ port: rest.port, method: 'POST', path: '/model/add:add_common', headers: { 'content-length': 1000 }, agent: false });
    req.on('error', () => resolve());
    req.write('{"instances":');
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 100);
  });
  await new Promise((r) => setTimeout(r, 1600)); // the slow request finishes after its client left
  const live = await call('/model/add:add_common', { body: SEED_BODY });
  t.equal(live.status, 200);
  t.same(live.json, SEED_REPLY);
});
