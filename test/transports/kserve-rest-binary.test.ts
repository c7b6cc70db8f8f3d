// KServe v2 over REST, the binary tensor data extension: every datatype binary both ways,
// mixed JSON and binary tensors in one request and one reply, misaligned chunks, the raw
// shortcut (Inference-Header-Content-Length: 0), and malformed binary bodies (400, server live).
import t from 'tap';
import { ONNX_DTYPES } from '../../dist/servables/onnx-builder.js';
import { type KServeFixture, bytesChunk, picture, postBinary, postJson, startKServe, v2Reply } from './rest/fixtures/kserve.js';
import { request } from './rest/fixtures/rest.js';

let fx: KServeFixture;
let port = 0;
t.before(async () => {
  fx = await startKServe('binary');
  port = fx.rest.port;
});
t.teardown(() => fx.stop());

const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Four elements of each dtype as raw little-endian bytes (BYTES in its length-prefixed layout). */
const RAW: Record<string, { datatype: string; chunk: Buffer }> = {
  bool: { datatype: 'BOOL', chunk: Buffer.from([1, 0, 0, 1]) },
  int8: { datatype: 'INT8', chunk: bytesOf(Int8Array.of(-128, 127, 0, -1)) },
  int16: { datatype: 'INT16', chunk: bytesOf(Int16Array.of(-32768, 32767, 1, 2)) },
  int32: { datatype: 'INT32', chunk: bytesOf(Int32Array.of(-2147483648, 2147483647, 3, 4)) },
  int64: { datatype: 'INT64', chunk: bytesOf(BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 5n, -6n)) },
  uint8: { datatype: 'UINT8', chunk: Buffer.from([0, 255, 7, 8]) },
  uint16: { datatype: 'UINT16', chunk: bytesOf(Uint16Array.of(0, 65535, 9, 10)) },
  uint32: { datatype: 'UINT32', chunk: bytesOf(Uint32Array.of(0, 4294967295, 11, 12)) },
  uint64: { datatype: 'UINT64', chunk: bytesOf(BigUint64Array.of(2n ** 64n - 1n, 0n, 13n, 14n)) },
  float16: { datatype: 'FP16', chunk: bytesOf(Uint16Array.of(0x3c00, 0x7bff, 0x0001, 0x7e00)) },
  float32: { datatype: 'FP32', chunk: bytesOf(Float32Array.of(0.1, -1e30, NaN, -0)) },
  float64: { datatype: 'FP64', chunk: bytesOf(Float64Array.of(0.1, 1e300, -Infinity, 5e-324)) },
  // ONNX Runtime's string tensors keep UTF-8 text without NULs only (the echo test below sends any bytes)
  string: { datatype: 'BYTES', chunk: bytesChunk(['a', '', 'héllo', 'xyz']) },
};

t.test('every datatype binary in and binary out, bit for bit', async (t) => {
  t.same(Object.keys(RAW).sort(), [...ONNX_DTYPES].sort());
  for (const d of ONNX_DTYPES) {
    const { datatype, chunk } = RAW[d]!;
    const r = await postBinary(port, `/v2/models/ident.id_${d}/infer`, {
      inputs: [{ name: 'x', datatype, shape: [2, 2], parameters: { binary_data_size: chunk.length } }],
      parameters: { binary_data_output: true },
    }, [chunk]);
    t.equal(r.status, 200, `${d}: ${r.http.text.slice(0, 200)}`);
    t.equal(r.http.headers['content-type'], 'application/octet-stream', d);
    const out = r.json.outputs![0]!;
    t.same([out.name, out.datatype, out.shape, out.data], ['y', datatype, [2, 2], undefined], d);
    t.same(out.parameters, { binary_data_size: chunk.length }, d);
    t.same(r.binary.get('y'), chunk, `${d}: the same bytes back`);
    t.equal(r.json.parameters, undefined, 'binary_data_output is a transport setting, not echoed');
  }
});

t.test('BYTES that are not UTF-8 go through a TS stage untouched, binary both ways; as JSON they are a 500 that says why', async (t) => {
  const chunk = bytesChunk([Buffer.from([0xff, 0x00, 0xfe]), Buffer.from([0xc3])]);
  const header = { inputs: [{ name: 'x', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: chunk.length } }] };
  const r = await postBinary(port, '/v2/models/ident.echo/infer', { ...header, parameters: { binary_data_output: true } }, [chunk]);
  t.equal(r.status, 200, r.http.text);
  t.same(r.json.outputs![0]!.shape, [2]);
  t.same(r.binary.get('y'), chunk);
  const asJson = await postBinary(port, '/v2/models/ident.echo/infer', header, [chunk]);
  t.equal(asJson.status, 500);
  t.match(asJson.json, { error: /element 0 is not valid UTF-8.*"binary_data": true/ });
});

t.test('binary in, JSON out by default; JSON in, binary out per output', async (t) => {
  const { chunk } = RAW['int64']!;
  const jsonOut = await postBinary(port, '/v2/models/ident.id_int64/infer', { inputs: [{ name: 'x', datatype: 'INT64', shape: [2, 2], parameters: { binary_data_size: 32 } }] }, [chunk]);
  t.match(jsonOut.http.headers['content-type'], /^application\/json/);
  t.equal(jsonOut.http.headers['inference-header-content-length'], undefined);
  t.match(jsonOut.http.text, /"data":\[-9223372036854775808,9223372036854775807,5,-6\]/);
  const binOut = await postJson(port, '/v2/models/add/infer', {
    inputs: ['x1', 'x2'].map((name) => ({ name, datatype: 'FP32', shape: [1, 2, 2], data: [1, 2, 3, 4] })),
    outputs: [{ name: 'y', parameters: { binary_data: true } }],
  });
  t.equal(binOut.http.headers['content-type'], 'application/octet-stream');
  t.same([...new Float32Array(new Uint8Array(binOut.binary.get('y')!).buffer)], [2, 4, 6, 8]);
  const overridden = await postJson(port, '/v2/models/add/infer', {
    parameters: { binary_data_output: true, keep: 'me' },
    inputs: ['x1', 'x2'].map((name) => ({ name, datatype: 'FP32', shape: [1, 2, 2], data: [1, 2, 3, 4] })),
    outputs: [{ name: 'y', parameters: { binary_data: false } }],
  });
  t.match(overridden.http.headers['content-type'], /^application\/json/, "an output's binary_data overrides binary_data_output");
  t.same(overridden.json.parameters, { keep: 'me' });
  t.same(overridden.json.outputs![0]!.data, [2, 4, 6, 8]);
});

t.test('mixed: JSON and binary inputs in one body, JSON and binary outputs in one reply', async (t) => {
  const x2 = bytesOf(Float32Array.of(10, 20, 30, 40, 50, 60, 70, 80));
  const add = await postBinary(port, '/v2/models/add/infer', {
    id: 'mixed',
    inputs: [
      { name: 'x1', datatype: 'FP32', shape: [2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] },
      { name: 'x2', datatype: 'FP32', shape: [2, 2, 2], parameters: { binary_data_size: x2.length } },
    ],
  }, [x2]);
  t.equal(add.status, 200, add.http.text);
  t.same(add.json.outputs![0]!.data, [11, 22, 33, 44, 55, 66, 77, 88]);
  t.equal(add.json.id, 'mixed');
  const img = await picture('jpeg', 5);
  const top5 = await postBinary(port, '/v2/models/resnet.classify_top5/infer', {
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: 2 * (4 + img.length) } }],
    outputs: [{ name: 'labels', parameters: { binary_data: true } }, { name: 'scores' }],
  }, [bytesChunk([img, img])]);
  t.equal(top5.status, 200, top5.http.text.slice(0, 300));
  t.equal(top5.http.headers['content-type'], 'application/octet-stream');
  const [labels, scores] = top5.json.outputs!;
  t.same([labels!.shape, labels!.parameters, labels!.data], [[2, 5], { binary_data_size: top5.binary.get('labels')!.length }, undefined]);
  t.same([scores!.shape, scores!.data!.length, scores!.parameters], [[2, 5], 10, undefined]);
  const raw = top5.binary.get('labels')!;
  const first = raw.readUInt32LE(0);
  t.match(raw.subarray(4, 4 + first).toString(), /^class_\d+$/);
});

t.test('a chunk at an odd offset is copied, an aligned one viewed: both give the same numbers', async (t) => {
  const x = Float64Array.of(1.5, -2.5, 3.25, 4);
  for (const pad of [0, 1, 3]) {
    const header = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP64', shape: [2, 2], parameters: { binary_data_size: 32 } }] });
    // pad the JSON with spaces so the chunk starts at offset header.length + pad
    const r = await postBinary(port, '/v2/models/ident.id_float64/infer', header + ' '.repeat(pad), [bytesOf(x)]);
    t.same(r.json.outputs![0]!.data, [1.5, -2.5, 3.25, 4], `chunk at offset ${header.length + pad}`);
  }
});

t.test('the raw shortcut: Inference-Header-Content-Length: 0, the body is the one input', async (t) => {
  const raw = async (path: string, body: Uint8Array) =>
    v2Reply(await request({ port }, path, { body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': '0' } }));
  const r = await raw('/v2/models/ident.id_float32/infer', bytesOf(Float32Array.of(1.25, -3)));
  t.equal(r.status, 200, r.http.text);
  t.same([r.json.outputs![0]!.shape, r.json.outputs![0]!.datatype], [[1, 2], 'FP32'], 'one instance');
  t.same([...new Float32Array(new Uint8Array(r.binary.get('y')!).buffer)], [1.25, -3], 'every output binary');
  const img = await picture('png', 7);
  const label = await raw('/v2/models/resnet/infer', img);
  t.equal(label.status, 200, label.http.text);
  t.same(label.json.outputs![0]!.shape, [1]);
  t.match(label.binary.get('label')!.subarray(4).toString(), /^class_\d+$/, 'an encoded image as the BYTES input');
  const wrongSize = await raw('/v2/models/ident.id_float32/infer', Buffer.alloc(12));
  t.equal(wrongSize.status, 400);
  t.match(wrongSize.json, { error: /needs 8 bytes, got 12/ });
  const twoInputs = await raw('/v2/models/add/infer', Buffer.alloc(16));
  t.equal(twoInputs.status, 400);
  t.match(twoInputs.json, { error: /needs a model with one input; "add" has 2/ });
  const unknown = await raw('/v2/models/nope/infer', Buffer.alloc(4));
  t.equal(unknown.status, 404);
});

t.test('malformed binary bodies are 400 {"error"}, and the server stays live', async (t) => {
  const f32 = bytesOf(Float32Array.of(1, 2, 3, 4));
  const input = (size: number, extra: object = {}) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: size }, ...extra }] });
  const cases: [string, unknown, Uint8Array[], RegExp][] = [
    ['size past the end', input(32), [f32], /binary_data_size 32 runs past the end of the body \(16 bytes left\)/],
    ['bytes left over', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 8 } }] }, [f32], /8 bytes after the inputs' binary data/],
    ['size unlike the shape', input(12), [f32.subarray(0, 12)], /needs 16 bytes, got 12/],
    ['both data and size', input(16, { data: [1, 2, 3, 4] }), [f32], /both "data" and binary_data_size/],
    ['size not a count', input(-1), [f32], /binary_data_size must be a byte count/],
    ['BOOL byte 2', { inputs: [{ name: 'x', datatype: 'BOOL', shape: [1, 2], parameters: { binary_data_size: 2 } }] }, [Buffer.from([1, 2])], /expected 0 or 1/],
    ['BYTES length past the end', { inputs: [{ name: 'x', datatype: 'BYTES', shape: [1, 2], parameters: { binary_data_size: 9 } }] }, [Buffer.from([1, 0, 0, 0, 0x61, 9, 0, 0, 0])], /BYTES element 1 says 9 bytes/],
    ['binary_data_output not a flag', { ...input(16), parameters: { binary_data_output: 'yes' } }, [f32], /binary_data_output must be true or false/],
  ];
  for (const [what, header, chunks, message] of cases) {
    const path = what.startsWith('BOOL') ? '/v2/models/ident.id_bool/infer' : what.startsWith('BYTES') ? '/v2/models/ident.id_string/infer' : '/v2/models/ident.id_float32/infer';
    const r = await postBinary(port, path, header, chunks);
    t.equal(r.status, 400, `${what}: ${r.http.text}`);
    t.match(r.json, { error: message }, what);
  }
  const headerTooLong = await request({ port }, '/v2/models/ident.id_float32/infer', { body: '{"inputs":[]}', headers: { 'inference-header-content-length': '99' } });
  t.equal(headerTooLong.status, 400);
  t.match(headerTooLong.json, { error: /Inference-Header-Content-Length is 99, but the body has only 13 bytes/ });
  const notANumber = await request({ port }, '/v2/models/ident.id_float32/infer', { body: '{}', headers: { 'inference-header-content-length': 'ten' } });
  t.equal(notANumber.status, 400);
  t.match(notANumber.json, { error: /must be a byte count/ });
  const binaryWithoutHeader = await request({ port }, '/v2/models/ident.id_float32/infer', { body: Buffer.concat([Buffer.from(JSON.stringify(input(16))), f32]) });
  t.equal(binaryWithoutHeader.status, 400);
  t.match(binaryWithoutHeader.json, { error: /needs the Inference-Header-Content-Length header/ });
  t.same((await request({ port }, '/v2/health/live')).json, { live: true }, 'still live');
  const after = await postBinary(port, '/v2/models/ident.id_float32/infer', input(16), [f32]);
  t.same(after.json.outputs![0]!.data, [1, 2, 3, 4], 'and still answering');
});
