// The pure JSON codec: body → ParsedRequest (the JS parser), ParsedValue → Tensor, and the
// JSON writers (shortest float printing, nesting, non-finite values).
import t from 'tap';
import { parseInstances, checkDepth, firstInvalidUtf8 } from '../../../dist/transports/rest/json-parse.js';
import { decodeJsonRequest, encodeJsonReply, toTensor, tensorJson } from '../../../dist/transports/rest/json-codec.js';
import { float16Text, float32Text, float64Text, writeFloat32Json, writeNested } from '../../../dist/transports/rest/json-writer.js';
import { floatToHalf, halfToFloat } from '../../../dist/transports/rest/float16.js';
import { decodeBase64 } from '../../../dist/transports/rest/base64.js';
import { ServingError } from '../../../dist/engine/errors.js';

const body = (s: string): Uint8Array => new TextEncoder().encode(s);

t.test('parseInstances: the ParsedRequest shapes', async (t) => {
  let p = parseInstances(body('{"instances":{"a":[[1,2],[3,4]],"b":[true,false],"c":"s","d":{"b64":"AAAA","type":"int32"},"e":2.5}}'));
  t.equal(p.single, true);
  const v = p.instances[0]!;
  t.same(v.a, { kind: 'numbers', shape: [2, 2], data: Float64Array.of(1, 2, 3, 4), integers: true });
  t.same(v.b, { kind: 'bools', shape: [2], data: Uint8Array.of(1, 0) });
  t.same(v.c, { kind: 'strings', shape: [], data: ['s'] });
  t.same(v.d, { kind: 'b64', b64: 'AAAA', type: 'int32' });
  t.same(v.e, { kind: 'numbers', shape: [], data: Float64Array.of(2.5), integers: false });
  p = parseInstances(body('\uFEFF{"instances":[{"x":[]},{"x":[[],[]]}],"other":{"ignored":true}}'));
  t.equal(p.single, false, 'a BOM is skipped; other top-level keys are ignored');
  t.same(p.instances.map((i) => (i.x as { shape: number[] }).shape), [[0], [2, 0]], 'empty lists are zero-sized');
});

t.test('parseInstances: errors name what and where', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /body is empty/],
    ['{"instances":[{"x":[[1,2],[3]]}]}', /instance 0, input 'x': the list at \[1\] has 1 elements but the one at \[0\] has 2/],
    ['{"instances":[{"x":1},{"x":[1,[2]]}]}', /instance 1, input 'x': element \[1\] is a list where a number was expected/],
    ['{"instances":{"x":[true,1]}}', /element \[1\] is a number but element \[0\] is a bool/],
    ['{"instances":{"x":[[1],[null]]}}', /element \[1\]\[0\] is null but element \[0\]\[0\] is a number/],
    ['{"instances":{"x":[null]}}', /element \[0\] is null/],
    ['{"instances":{"x":{"b64":"A","shape":[1],"type":"int8","x":1}}}', /may only have the keys/],
    ['{"instances":{"":1}}', /an input with an empty name/],
    ['{"instances":{"x":1}', /not valid JSON/],
    ['{"instances":[{"x":1},3]}', /instance 1 must be an object/],
  ];
  for (const [text, message] of cases) {
    t.throws(() => parseInstances(body(text)), { code: /E_INVALID_ARGUMENT|E_NO_INSTANCES/, message }, text);
  }
});

t.test('depth and UTF-8 checks', async (t) => {
  t.doesNotThrow(() => checkDepth(body('['.repeat(64) + ']'.repeat(64)), 64));
  t.throws(() => checkDepth(body('['.repeat(65) + ']'.repeat(65)), 64), { message: /deeper than 64 levels \(at byte 64\)/ });
  t.doesNotThrow(() => checkDepth(body(`{"a":"${'['.repeat(100)}\\"${'{'.repeat(100)}"}`), 64), 'brackets inside strings (and after escaped quotes) do not count');
  t.equal(firstInvalidUtf8(Uint8Array.of(0x61, 0xe2, 0x82, 0xac, 0xc0, 0x80)), 4, 'an overlong encoding is invalid');
  t.equal(firstInvalidUtf8(Uint8Array.of(0xed, 0xa0, 0x80)), 0, 'a surrogate is invalid');
  t.equal(firstInvalidUtf8(Uint8Array.of(0x61, 0xf0, 0x9f, 0x98)), 1, 'a truncated sequence is invalid');
});

t.test('toTensor: model dtype, defaults, ranges', async (t) => {
  const nums = (data: number[], shape = [data.length]) => ({ kind: 'numbers' as const, shape, data: Float64Array.from(data), integers: data.every(Number.isInteger) });
  t.same(toTensor(nums([1, 2]), 'int64', 'x'), { dtype: 'int64', shape: [2], data: BigInt64Array.of(1n, 2n) });
  t.same(toTensor(nums([1, 2]), 'uint16', 'x'), { dtype: 'uint16', shape: [2], data: Uint16Array.of(1, 2) });
  t.same(toTensor(nums([1.5, -2]), 'float16', 'x'), { dtype: 'float16', shape: [2], data: Uint16Array.of(0x3e00, 0xc000) });
  t.same(toTensor(nums([1, 2]), undefined, 'x'), { dtype: 'int32', shape: [2], data: Int32Array.of(1, 2) });
  t.same(toTensor(nums([1.5, 2]), undefined, 'x'), { dtype: 'float32', shape: [2], data: Float32Array.of(1.5, 2) });
  t.same(toTensor(nums([], [0]), 'string', 'x'), { dtype: 'string', shape: [0], data: [] }, 'an empty list fits any dtype');
  t.throws(() => toTensor(nums([1]), 'string', 'x'), { code: 'E_INVALID_DTYPE', message: /x: the model takes string, got numbers/ });
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
});

t.test('float16 conversions', async (t) => {
  let roundTrips = 0;
  for (let h = 0; h < 0x10000; h++) {
    const v = halfToFloat(h);
    if (Number.isNaN(v)) continue;
    if (floatToHalf(v) === h) roundTrips++;
  }
  t.equal(roundTrips, 0x10000 - 2046, 'every non-NaN half converts back to itself');
  // midpoints round to even
  t.equal(floatToHalf(1 + 2 ** -11), 0x3c00, '1 + half an ulp → 1 (even)');
  t.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02, '1 + 1.5 ulp → 1 + 2 ulp (even)');
  t.equal(floatToHalf(2 ** -25), 0x0000, 'half the smallest subnormal → 0 (even)');
  t.equal(floatToHalf(2 ** -25 * 1.0001), 0x0001);
  t.equal(floatToHalf(65520), 0x7c00, '65520 rounds to Infinity');
  t.equal(floatToHalf(-0), 0x8000);
  t.equal(floatToHalf(NaN) & 0x7e00, 0x7e00);
});

t.test('float printing: shortest round-trip', async (t) => {
  t.equal(float32Text(Math.fround(3.2)), '3.2');
  t.equal(float32Text(Math.fround(0.1)), '0.1');
  t.equal(float32Text(2), '2.0');
  t.equal(float32Text(-0), '-0.0');
  t.equal(float32Text(Math.fround(1e20)), '100000000000000000000.0', 'JS number formatting: exponents from 1e21');
  t.equal(float32Text(Math.fround(3e38)), '3e+38');
  t.equal(float32Text(NaN), '"NaN"');
  t.equal(float32Text(-Infinity), '"-Infinity"');
  t.equal(float64Text(0.1 + 0.2), '0.30000000000000004');
  t.equal(float64Text(1e21), '1e+21');
  t.equal(float16Text(0x2e66), '0.1');
  t.equal(float16Text(0x7bff), '65500.0', 'the largest half prints shortest, as numpy does');
  t.equal(float16Text(0x0001), '6e-8', 'the smallest subnormal');
  // random float32 values: printed text reads back to the same float32, with at most 9 digits
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const u32 = new Uint32Array(1);
  const f32 = new Float32Array(u32.buffer);
  let bad = 0;
  for (let i = 0; i < 20000; i++) {
    u32[0] = Math.floor(rand() * 2 ** 32);
    const v = f32[0]!;
    if (!Number.isFinite(v)) continue;
    const s = float32Text(v);
    const digits = s.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
    if (Math.fround(Number(s)) !== v || digits.length > 9) bad++;
  }
  t.equal(bad, 0, 'random float32 bit patterns print shortest and round-trip');
  // every float16 prints to text that converts back to it
  let badHalf = 0;
  for (let h = 0; h < 0x10000; h++) {
    if (Number.isNaN(halfToFloat(h)) || !Number.isFinite(halfToFloat(h))) continue;
    if (floatToHalf(Number(float16Text(h))) !== h) badHalf++;
  }
  t.equal(badHalf, 0, 'every finite float16 round-trips through its text');
});

t.test('nesting follows the shape, zero dims included', async (t) => {
  const e = (i: number): string => String(i);
  t.equal(writeNested([], e), '0');
  t.equal(writeNested([0], e), '[]');
  t.equal(writeNested([2, 0], e), '[[],[]]');
  t.equal(writeNested([0, 2], e), '[]');
  t.equal(writeNested([2, 1, 2], e), '[[[0,1]],[[2,3]]]');
  t.equal(writeFloat32Json(Float32Array.of(1, 2.5, 3, 4), [2, 2]), '[[1.0,2.5],[3.0,4.0]]');
});

t.test('replies: outputs, per-instance errors, strings and bytes', async (t) => {
  const out = encodeJsonReply([
    { y: { dtype: 'float32', shape: [1], data: Float32Array.of(0.5) }, s: { dtype: 'string', shape: [2], data: [Buffer.from('a"b'), Buffer.from('ü')] } },
    new ServingError('E_INVALID_SHAPE', 'bad "shape"'),
    { b: { dtype: 'bytes', shape: [], data: [Buffer.from([0xff])] }, i: { dtype: 'int64', shape: [], data: BigInt64Array.of(-(2n ** 63n)) } },
  ]);
  t.equal(out, '{"instances":[{"y":[0.5],"s":["a\\"b","ü"]},{"error_msg":"bad \\"shape\\""},{"b":{"b64":"/w=="},"i":-9223372036854775808}]}');
  t.same(JSON.parse(out).instances.length, 3);
  const notUtf8 = encodeJsonReply([{ s: { dtype: 'string', shape: [], data: [Buffer.from([0xff])] } }]);
  t.match(JSON.parse(notUtf8), { instances: [{ error_msg: /output 's' element 0 is not valid UTF-8.*msgpack/ }] });
  t.equal(tensorJson({ dtype: 'bool', shape: [2], data: Uint8Array.of(0, 1) }), '[false,true]');
});
