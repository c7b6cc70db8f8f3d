// The pure JSON codec as the REST transport runs it: body → ParsedRequest (native/index.ts
// `parseInstances`, the transport's default), ParsedValue → Tensor, and the JSON replies
// (native writers; float16 printing and nesting in json-writer.ts).
import t from 'tap';
import * as restIndex from '../../../dist/transports/rest/index.js';
import { decodeJsonRequest, encodeJsonReply, toTensor, tensorJson } from '../../../dist/transports/rest/json-codec.js';
import { writeNested } from '../../../dist/transports/rest/json-writer.js';
import { decodeBase64 } from '../../../dist/transports/rest/base64.js';
import { mulberry32 } from '../../../dist/servables/onnx-builder.js';
import { ServingError } from '../../../dist/engine/errors.js';
import * as native from '../../../dist/native/index.js';
import type { Tensor } from '../../../dist/engine/tensor.js';

const { parseInstances } = restIndex;
const body = (s: string): Uint8Array => new TextEncoder().encode(s);

t.test('the transport parses with native/index.ts parseInstances', async (t) => {
  t.equal(restIndex.parseInstances, native.parseInstances, 'transports/rest/index.ts exports the native parser');
  // decodeJsonRequest uses it when no parser is given: its errors are the native ones
  t.throws(() => decodeJsonRequest(body('{"instances":{"x":[1,[2]]}}'), []), { message: /^instance 0, input 'x': ragged list at \[1\]: expected a scalar, got a list \(at byte \d+\)$/ });
});

t.test('parseInstances: the ParsedRequest shapes', async (t) => {
  let p = parseInstances(body('{"instances":{"a":[[1,2],[3,4]],"b":[true,false],"c":"s","d":{"b64":"AAAA","type":"int32"},"e":2.5}}'));
  t.equal(p.single, true);
  const v = p.instances[0]!;
  t.same(v.a, { kind: 'numbers', shape: [2, 2], data: Float64Array.of(1, 2, 3, 4), integers: true });
  t.same(v.b, { kind: 'bools', shape: [2], data: Uint8Array.of(1, 0) });
  t.same(v.c, { kind: 'strings', shape: [], data: ['s'] });
  t.same(v.d, { kind: 'b64', b64: 'AAAA', type: 'int32' });
  t.same(v.e, { kind: 'numbers', shape: [], data: Float64Array.of(2.5), integers: false });
  t.equal(Object.getPrototypeOf(v), null, 'instance records have no prototype');
  p = parseInstances(body('{"instances":[{"x":[]},{"x":[[],[]]}],"other":{"ignored":true}}'));
  t.equal(p.single, false, 'other top-level keys are ignored');
  t.same(p.instances.map((i) => (i.x as { shape: number[] }).shape), [[0], [2, 0]], 'empty lists are zero-sized');
  t.same(p.instances.map((i) => (i.x as { integers: boolean }).integers), [false, false], 'zero-sized lists are float tensors');
  // integer-ness is decided by syntax: 1.0 and 1e0 are floats, and a list is integers only when every element is
  p = parseInstances(body('{"instances":{"a":1,"b":1.0,"c":1e0,"d":[1,2],"e":[1,2.0],"f":[[1],[-0]]}}'));
  const ints = Object.fromEntries(Object.entries(p.instances[0]!).map(([k, x]) => [k, (x as { integers: boolean }).integers]));
  t.same(ints, { a: true, b: false, c: false, d: true, e: false, f: true });
  t.same(p.instances[0]!.e, { kind: 'numbers', shape: [2], data: Float64Array.of(1, 2), integers: false }, 'ints and floats may mix in one list');
});

t.test('float64 inputs own their buffers (parsed small values share one, which a postMessage would clone whole)', async (t) => {
  const text = JSON.stringify({ instances: Array.from({ length: 200 }, (_, i) => ({ x: [i + 0.5, -i] })) });
  const instances = decodeJsonRequest(body(text), [{ name: 'x', dtype: 'float64' }]);
  const owning = instances.filter(({ x }) => {
    const d = x!.data as Float64Array;
    return d.byteOffset === 0 && d.buffer.byteLength === 16;
  });
  t.equal(owning.length, 200, 'every tensor owns exactly its 16 bytes');
  t.same([...(instances[7]!['x']!.data as Float64Array)], [7.5, -7]);
});

t.test('decodeJsonRequest skips one UTF-8 byte order mark', async (t) => {
  const [inst] = decodeJsonRequest(body('\uFEFF{"instances":{"x":[1,2]}}'), [{ name: 'x', dtype: 'float32' }]);
  t.same([...(inst!.x!.data as Float32Array)], [1, 2]);
});

t.test('decodeJsonRequest: errors name what and where', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['', 'E_INVALID_ARGUMENT', /^the request body is empty/],
    ['{"instances":[]}', 'E_NO_INSTANCES', /"instances" is an empty list/],
    ['{"instances":{}}', 'E_INVALID_ARGUMENT', /^instance 0 is an empty object: it names no inputs$/],
    ['{"instances":[{"x":1},{}]}', 'E_INVALID_ARGUMENT', /^instance 1 is an empty object/],
    ['{"instances":{"":1}}', 'E_INVALID_ARGUMENT', /^instance 0 has an input with an empty name$/],
    ['{"instances":[{"x":[[1,2],[3]]}]}', 'E_INVALID_ARGUMENT', /^instance 0, input 'x': ragged list at \[1\]: expected 2 elements, got 1 \(at byte 26\)$/],
    ['{"instances":[{"x":1},{"x":[1,[2]]}]}', 'E_INVALID_ARGUMENT', /^instance 1, input 'x': ragged list at \[1\]: expected a scalar, got a list/],
    ['{"instances":{"x":[true,1]}}', 'E_INVALID_ARGUMENT', /mixed element kinds at \[1\]: expected a bool, got a number/],
    ['{"instances":{"x":[[1],[null]]}}', 'E_INVALID_ARGUMENT', /input 'x': null is not supported at \[1,0\]/],
    ['{"instances":{"x":[null]}}', 'E_INVALID_ARGUMENT', /input 'x': null is not supported at \[0\]/],
    ['{"instances":{"x":{"b64":"A","shape":[1],"type":"int8","x":1}}}', 'E_INVALID_ARGUMENT', /unexpected key 'x' in a \{"b64": \.\.\.\} object \(allowed: b64, type, shape\)/],
    ['{"instances":{"x":1}', 'E_INVALID_ARGUMENT', /^invalid JSON: unexpected end of body \(at byte 20\)$/],
    ['{"instances":{"x":[1,2,]}}', 'E_INVALID_ARGUMENT', /invalid JSON: unexpected '\]'/],
    ['{"instances":[{"x":1},3]}', 'E_INVALID_ARGUMENT', /^instance 1 must be an object \(at byte 22\)$/],
    ['{"instances":{"x":1,"x":2}}', 'E_INVALID_ARGUMENT', /^duplicate key 'x' \(at byte 20\)$/],
    ['\uFEFF{"instances":{"x":1', 'E_INVALID_ARGUMENT', /^invalid JSON: unexpected end of body \(at byte 19\)$/], // positions count after a BOM
    ['\uFEFF\uFEFF{"instances":{"x":1}}', 'E_INVALID_ARGUMENT', /^the body must be a JSON object with an 'instances' key \(at byte 0\)$/], // only one is skipped
  ];
  for (const [text, code, message] of cases) {
    t.throws(() => decodeJsonRequest(body(text), []), { code, message }, text);
    let err: unknown;
    try {
      decodeJsonRequest(body(text), []);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ServingError, `${text}: a ServingError (status 400)`);
  }
});

t.test('depth and UTF-8 checks (native parser)', async (t) => {
  // the top-level object and the instance object count: a list value may nest 62 deep here
  const nested = (k: number): string => `{"instances":{"x":${'['.repeat(k)}1${']'.repeat(k)}}}`;
  t.doesNotThrow(() => parseInstances(body(nested(62))), '64 levels in all pass');
  t.throws(() => parseInstances(body(nested(63))), { code: 'E_INVALID_ARGUMENT', message: /nesting deeper than 64 levels \(at byte 80\)/, position: 80 });
  t.throws(() => parseInstances(body(nested(100_000))), { message: /nesting deeper than 64 levels \(at byte 80\)/ }, 'a very deep body stops at level 65');
  t.doesNotThrow(
    () => parseInstances(body(`{"instances":{"a":"${'['.repeat(100)}\\"${'{'.repeat(100)}"}}`)),
    'brackets inside strings (and after escaped quotes) do not count',
  );
  const withBytes = (...bytes: number[]): Uint8Array => Buffer.concat([Buffer.from('{"instances":{"x":"'), Buffer.from(bytes), Buffer.from('"}}')]);
  const at = 19; // the string's first byte
  t.throws(() => parseInstances(withBytes(0x61, 0xe2, 0x82, 0xac, 0xc0, 0x80)), { message: /invalid UTF-8 in a string/, position: at + 4 }, 'an overlong encoding is invalid');
  t.throws(() => parseInstances(withBytes(0xed, 0xa0, 0x80)), { message: /invalid UTF-8 in a string/, position: at }, 'a surrogate is invalid');
  t.throws(() => parseInstances(withBytes(0x61, 0xf0, 0x9f, 0x98)), { message: /invalid UTF-8 in a string/, position: at + 1 }, 'a truncated sequence is invalid');
  t.same(parseInstances(withBytes(0x61, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80)).instances[0]!.x, { kind: 'strings', shape: [], data: ['a€😀'] });
});

t.test('toTensor: model dtype, defaults, ranges', async (t) => {
  const nums = (data: number[], shape = [data.length]) => ({ kind: 'numbers' as const, shape, data: Float64Array.from(data), integers: data.every(Number.isInteger) });
  t.same(toTensor(nums([1, 2]), 'int64', 'x'), { dtype: 'int64', shape: [2], data: BigInt64Array.of(1n, 2n) });
  t.same(toTensor(nums([1, 2]), 'uint16', 'x'), { dtype: 'uint16', shape: [2], data: Uint16Array.of(1, 2) });
  t.same(toTensor(nums([1.5, -2]), 'float16', 'x'), { dtype: 'float16', shape: [2], data: Uint16Array.of(0x3e00, 0xc000) });
  t.same(toTensor(nums([1, 2]), undefined, 'x'), { dtype: 'int32', shape: [2], data: Int32Array.of(1, 2) });
  t.same(toTensor(nums([1.5, 2]), undefined, 'x'), { dtype: 'float32', shape: [2], data: Float32Array.of(1.5, 2) });
  t.same(toTensor(nums([], [0]), 'string', 'x'), { dtype: 'string', shape: [0], data: [] }, 'an empty list fits any dtype');
  t.throws(() => toTensor(nums([1]), 'string', 'x'), { code: 'E_INVALID_DTYPE', message: /x takes string, got numbers/ });
  t.throws(() => toTensor(nums([0, -129], [1, 2]), 'int8', 'x'), { message: /x: element \[0\]\[1\] \(-129\) is out of the int8 range/ });
  t.same(toTensor(nums([65519]), 'float16', 'x').data, Uint16Array.of(0x7bff), '65519 rounds down to the largest half, 65504');
  t.throws(() => toTensor(nums([65520]), 'float16', 'x'), { message: /out of the float16 range/ }, '65520 would round to Infinity');
  t.same(toTensor({ kind: 'bools', shape: [1], data: Uint8Array.of(1) }, undefined, 'x'), { dtype: 'bool', shape: [1], data: Uint8Array.of(1) });
  t.same(toTensor({ kind: 'strings', shape: [], data: ['é'] }, 'bytes', 'x'), { dtype: 'bytes', shape: [], data: [Buffer.from('é')] });
  const b = toTensor({ kind: 'b64', b64: Buffer.from(Int16Array.of(7, -7).buffer).toString('base64'), type: 'int16', shape: [2] }, undefined, 'x');
  t.same(b, { dtype: 'int16', shape: [2], data: Int16Array.of(7, -7) });
  t.same(toTensor({ kind: 'b64', b64: 'AgA=', type: 'bool', shape: [2] }, undefined, 'x').data, Uint8Array.of(1, 0), 'bool bytes are normalised to 0/1');
});

t.test('decodeJsonRequest wraps a foreign parser error as 400', async (t) => {
  let err: unknown;
  try {
    decodeJsonRequest(body('{}'), [], () => {
      throw new Error('native: unexpected byte at 3');
    });
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ServingError);
  t.match(err, { code: 'E_INVALID_ARGUMENT', message: 'native: unexpected byte at 3' });
});

t.test('strict base64', async (t) => {
  t.same([...decodeBase64('AQID', 'x')], [1, 2, 3]);
  t.same([...decodeBase64('AQ==', 'x')], [1]);
  t.same([...decodeBase64('', 'x')], []);
  for (const bad of ['AQ=', 'AQI', 'A===', '====', 'AQ==AQ==', 'AQ I', 'AQ-_', 'é...']) {
    t.throws(() => decodeBase64(bad, 'x'), { message: /not valid base64/ }, JSON.stringify(bad));
  }
  t.equal(decodeBase64('AQIDBAUG', 'x').byteOffset % 8, 0, 'decoded bytes are aligned for any typed array');
  const big = decodeBase64(Buffer.alloc(6000, 7).toString('base64'), 'x');
  t.equal(big.byteOffset, 0);
  t.equal(big.buffer.byteLength, 6000, 'a large result owns its whole buffer (it may be transferred)');
  t.ok(big.every((b) => b === 7));
});

t.test('strict base64 gives the verdicts of the alphabet regex on random text', async (t) => {
  // deterministic pseudo-random strings over the alphabet, padding and foreign characters
  const random = mulberry32(12345);
  const rand = (n: number): number => Math.floor(random() * n);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const foreign = ['=', '-', '_', ' ', '$', '\n', 'é', '.', '\t', '\0', '\u00ff', '😀'];
  const strict = /^[A-Za-z0-9+/]*={0,2}$/;
  let mismatches = 0;
  let accepted = 0;
  for (let k = 0; k < 200_000; k++) {
    let text = '';
    for (let i = rand(13); i > 0; i--) text += rand(100) < 15 ? foreign[rand(foreign.length)] : alphabet[rand(64)];
    if (rand(10) < 3) text += rand(2) ? '=' : '==';
    const want = text.length % 4 === 0 && strict.test(text) ? Buffer.from(text, 'base64') : undefined;
    let got: Uint8Array | undefined;
    try {
      got = decodeBase64(text, 'x');
    } catch {
      got = undefined;
    }
    if (want) accepted++;
    if ((want === undefined) !== (got === undefined) || (want && !want.equals(got!))) mismatches++;
  }
  t.equal(mismatches, 0);
  t.ok(accepted > 10_000, `${accepted} valid strings among them`);
});

t.test('float16 conversions (native; toTensor for JSON numbers)', async (t) => {
  const all = Uint16Array.from({ length: 0x10000 }, (_, h) => h);
  const values = native.float16ToFloat32(all);
  const back = native.float32ToFloat16(values);
  let roundTrips = 0;
  for (let h = 0; h < 0x10000; h++) if (!Number.isNaN(values[h]!) && back[h] === h) roundTrips++;
  t.equal(roundTrips, 0x10000 - 2046, 'every non-NaN half converts back to itself');
  // JSON numbers into a float16 model: double → float32 → float16, midpoints to even
  const half = (v: number): number => (toTensor({ kind: 'numbers', shape: [], data: Float64Array.of(v), integers: false }, 'float16', 'x').data as Uint16Array)[0]!;
  t.equal(half(1 + 2 ** -11), 0x3c00, '1 + half an ulp → 1 (even)');
  t.equal(half(1 + 3 * 2 ** -11), 0x3c02, '1 + 1.5 ulp → 1 + 2 ulp (even)');
  t.equal(half(2 ** -25), 0x0000, 'half the smallest subnormal → 0 (even)');
  t.equal(half(2 ** -25 * 1.0001), 0x0001);
  t.equal(half(65519), 0x7bff, '65519 → the largest half');
  t.equal(half(-0), 0x8000);
  t.equal(native.float32ToFloat16(Float32Array.of(65520))[0], 0x7c00, '65520 rounds to Infinity (toTensor refuses it)');
  t.equal(native.float32ToFloat16(Float32Array.of(NaN))[0]! & 0x7e00, 0x7e00, 'NaN stays a quiet NaN');
});

t.test('float printing: shortest round-trip (the reply path)', async (t) => {
  const text = (dtype: 'float32' | 'float64' | 'float16', ...v: number[]): string => {
    const data = dtype === 'float32' ? Float32Array.from(v) : dtype === 'float64' ? Float64Array.from(v) : Uint16Array.from(v);
    return tensorJson({ dtype, shape: [], data } as Tensor);
  };
  t.equal(text('float32', 3.2), '3.2');
  t.equal(text('float32', 0.1), '0.1');
  t.equal(text('float32', 2), '2.0');
  t.equal(text('float32', -0), '-0.0');
  t.equal(text('float32', 1e20), '100000000000000000000.0', 'JS number formatting: exponents from 1e21');
  t.equal(text('float32', 3e38), '3e+38');
  t.equal(text('float32', NaN), '"NaN"');
  t.equal(text('float32', -Infinity), '"-Infinity"');
  t.equal(text('float64', 0.1 + 0.2), '0.30000000000000004');
  t.equal(text('float64', 1e21), '1e+21');
  t.equal(text('float16', 0x2e66), '0.1', 'shortest for float16, not for float32 (0.099975586)');
  t.equal(text('float16', 0x7bff), '65500.0', 'the largest half prints shortest, as numpy does');
  t.equal(text('float16', 0x0001), '6e-8', 'the smallest subnormal');
  t.equal(text('float16', 0x3c00), '1.0');
  t.equal(text('float16', 0x8000), '-0.0');
  t.equal(text('float16', 0x7c00), '"Infinity"');
  t.equal(text('float16', 0xfc00), '"-Infinity"');
  t.equal(text('float16', 0x7e00), '"NaN"');
  // random float32 values: printed text reads back to the same float32, with at most 9 digits
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const u32 = Uint32Array.from({ length: 20000 }, () => Math.floor(rand() * 2 ** 32));
  const f32 = new Float32Array(u32.buffer).filter(Number.isFinite);
  const printed = JSON.parse(tensorJson({ dtype: 'float32', shape: [f32.length], data: f32 })) as number[];
  const texts = tensorJson({ dtype: 'float32', shape: [f32.length], data: f32 }).slice(1, -1).split(',');
  let bad = 0;
  for (let i = 0; i < f32.length; i++) {
    const digits = texts[i]!.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
    if (Math.fround(printed[i]!) !== f32[i] || digits.length > 9) bad++;
  }
  t.equal(bad, 0, 'random float32 bit patterns print shortest and round-trip');
  // every float16 prints to text that converts back to it, with at most 5 significant digits
  const all = Uint16Array.from({ length: 0x10000 }, (_, h) => h);
  const halfTexts = tensorJson({ dtype: 'float16', shape: [0x10000], data: all }).slice(1, -1).split(',');
  const finite = [...all].filter((h) => (h & 0x7c00) !== 0x7c00);
  const back = native.float32ToFloat16(Float32Array.from(finite, (h) => Number(halfTexts[h])));
  let badHalf = 0;
  for (let k = 0; k < finite.length; k++) {
    const h = finite[k]!;
    const digits = halfTexts[h]!.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
    if (back[k] !== h || digits.length > 5) badHalf++;
  }
  t.equal(badHalf, 0, 'every finite float16 round-trips through its text');
  t.equal(halfTexts.filter((s) => s === '"NaN"').length, 2046, 'every NaN pattern prints "NaN"');
});

t.test('nesting follows the shape, zero dims included', async (t) => {
  const e = (i: number): string => String(i);
  t.equal(writeNested([], e), '0');
  t.equal(writeNested([0], e), '[]');
  t.equal(writeNested([2, 0], e), '[[],[]]');
  t.equal(writeNested([0, 2], e), '[]');
  t.equal(writeNested([2, 1, 2], e), '[[[0,1]],[[2,3]]]');
  t.equal(native.writeFloat32Json(Float32Array.of(1, 2.5, 3, 4), [2, 2]), '[[1.0,2.5],[3.0,4.0]]');
  t.equal(tensorJson({ dtype: 'float16', shape: [2, 0], data: new Uint16Array(0) }), '[[],[]]');
  t.equal(tensorJson({ dtype: 'float16', shape: [1, 2], data: Uint16Array.of(0x3e00, 0xc000) }), '[[1.5,-2.0]]');
  t.equal(tensorJson({ dtype: 'int8', shape: [0, 2], data: new Int8Array(0) }), '[]');
});

t.test('replies: outputs, per-instance errors, strings and bytes', async (t) => {
  const out = encodeJsonReply([
    { y: { dtype: 'float32', shape: [1], data: Float32Array.of(0.5) }, s: { dtype: 'string', shape: [2], data: [Buffer.from('a"b'), Buffer.from('ü')] } },
    new ServingError('E_INVALID_SHAPE', 'bad "shape"'),
    { b: { dtype: 'bytes', shape: [], data: [Buffer.from([0xff])] }, i: { dtype: 'int64', shape: [], data: BigInt64Array.of(-(2n ** 63n)) } },
  ]);
  t.equal(out, '{"instances":[{"y":[0.5],"s":["a\\"b","ü"]},{"error_msg":"bad \\"shape\\""},{"b":{"b64":"/w=="},"i":-9223372036854775808}]}');
  t.same((JSON.parse(out) as { instances: unknown[] }).instances.length, 3);
  const notUtf8 = encodeJsonReply([{ s: { dtype: 'string', shape: [], data: [Buffer.from([0xff])] } }]);
  t.match(JSON.parse(notUtf8), { instances: [{ error_msg: /output 's' element 0 is not valid UTF-8.*msgpack/ }] });
  t.equal(tensorJson({ dtype: 'bool', shape: [2], data: Uint8Array.of(0, 1) }), '[false,true]');
});
