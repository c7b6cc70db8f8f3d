// Typed arrays -> nested JSON lists: shortest round-trip numbers, ".0" on integral floats,
// NaN/Infinity as strings, shapes (zero dims, scalars), and native output byte-identical to JS.
import t from 'tap';
import {
  type JsonWritable,
  js,
  jsonTextBound,
  native as nativeCodec,
  nativeLoaded,
  parseInstances,
  writeBoolJson,
  writeFloat32Json,
  writeFloat64Json,
  writeIntJson,
} from '../../dist/native/index.js';
import { bytes, prng } from './helpers.js';

type Writers = Pick<typeof js, 'writeFloat32Json' | 'writeFloat64Json' | 'writeIntJson' | 'writeBoolJson'>;
const native: Writers = { writeFloat32Json, writeFloat64Json, writeIntJson, writeBoolJson };
const impls: ReadonlyArray<readonly [string, Writers]> = nativeLoaded ? [['native', native], ['js', js]] : [['js', js]];

/** JSON.parse with the writer's NaN/Infinity strings turned back into numbers. */
function readBack(text: string): unknown {
  const special: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };
  return JSON.parse(text, (_k, v: unknown) => (typeof v === 'string' && v in special ? special[v] : v));
}

function flatten(v: unknown, out: number[] = []): number[] {
  if (Array.isArray(v)) for (const e of v) flatten(e, out);
  else out.push(v as number);
  return out;
}

t.test('float32: known texts', async (t) => {
  const cases: Array<[number, string]> = [
    [3.2, '3.2'],
    [2, '2.0'],
    [-2, '-2.0'],
    [0, '0.0'],
    [-0, '-0.0'],
    [0.1, '0.1'],
    [1 / 3, '0.33333334'],
    [16777216, '16777216.0'],
    [1e20, '100000000000000000000.0'],
    [1e21, '1e+21'],
    [3.4028234663852886e38, '3.4028235e+38'],
    [1e-6, '0.000001'],
    [1e-7, '1e-7'],
    [1.401298464324817e-45, '1e-45'],
    [1.1754943508222875e-38, '1.1754944e-38'],
    [1048576.25, '1048576.2'], // exact tie between 8-digit candidates: even digit, as Ryu
    [387490.625, '387490.62'],
    [1.262177448353619e-29, '1.2621775e-29'], // power of two: lopsided round-trip interval
    [NaN, '"NaN"'],
    [Infinity, '"Infinity"'],
    [-Infinity, '"-Infinity"'],
  ];
  const data = Float32Array.from(cases.map(([x]) => x));
  for (const [which, w] of impls) {
    const out = w.writeFloat32Json(data, [data.length]);
    t.equal(out, `[${cases.map(([, s]) => s).join(',')}]`, `${which}: texts`);
    cases.forEach(([x, s]) => t.equal(w.writeFloat32Json(Float32Array.of(x), []), s, `${which}: scalar ${s}`));
  }
});

t.test('float32: random values round-trip through JSON.parse + Math.fround, native = JS', async (t) => {
  const rand = prng(32);
  const n = 100000;
  const bits = new Uint32Array(n);
  for (let i = 0; i < n; i++) bits[i] = Math.floor(rand() * 2 ** 32);
  const data = new Float32Array(bits.buffer);
  // Plus typical model outputs: small normal-ish values and integers.
  for (let i = 0; i < n / 4; i++) data[i] = (rand() - 0.5) * 8;
  for (let i = n / 4; i < n / 2; i += 7) data[i] = Math.round((rand() - 0.5) * 1000);
  const texts = new Map<string, string>();
  for (const [which, w] of impls) {
    const out = w.writeFloat32Json(data, [n / 100, 100]);
    texts.set(which, out);
    const back = readBack(out) as number[][];
    t.equal(back.length, n / 100, `${which}: outer dim`);
    t.ok(back.every((row) => row.length === 100), `${which}: inner dim`);
    const flat = flatten(back);
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const x = data[i]!;
      if (!(Number.isNaN(x) ? Number.isNaN(flat[i]) : Object.is(Math.fround(flat[i]!), x))) bad++;
    }
    t.equal(bad, 0, `${which}: every value reads back as the same float32`);
    // Each number is the shortest such text: one digit fewer never reads back.
    let notShortest = 0;
    for (const m of out.matchAll(/-?\d+(?:\.\d+)?(?:e[+-]\d+)?/g)) {
      const s = m[0];
      const x = Math.fround(+s);
      const digits = s.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
      if (digits.length > 1 && Math.fround(+x.toPrecision(digits.length - 1)) === x) notShortest++;
    }
    t.equal(notShortest, 0, `${which}: shortest`);
  }
  if (nativeLoaded) t.equal(texts.get('native'), texts.get('js'), 'native and JS texts are identical');
});

t.test('float32: every place of the point and every digit count, both signs, native = JS', async (t) => {
  // The plain-notation layouts are written branch-free in native (json_write.cc
  // WriteFloat32Shortest): sweep n = -7..22 (point position) against 1..9 significant digits.
  const values: number[] = [];
  const digits = '123456789';
  for (let k = 1; k <= 9; k++) {
    for (let e = -12; e <= 22; e++) {
      const v = Math.fround(Number(`${digits.slice(0, k)}e${e}`));
      values.push(v, -v);
    }
  }
  const data = Float32Array.from(values);
  const texts = new Map<string, string>();
  for (const [which, w] of impls) {
    const out = w.writeFloat32Json(data, [data.length]);
    texts.set(which, out);
    const back = readBack(out) as number[];
    t.equal(back.filter((x, i) => !Object.is(Math.fround(x), data[i])).length, 0, `${which}: every value reads back`);
  }
  if (nativeLoaded) t.equal(texts.get('native'), texts.get('js'), 'native and JS texts are identical');
  t.match(texts.get('js'), /,0\.00000123,/, 'a fraction with leading zeros');
  t.match(texts.get('js'), /,-123\.45678,/, 'digits on both sides of the point');
  t.match(texts.get('js'), /,1\.23e-7,/, 'exponent form below 1e-6');
  t.match(texts.get('js'), /,-123456790000000000000\.0,/, 'an integral value with zeros');
});

t.test('float64: random values round-trip exactly, native = JS', async (t) => {
  const rand = prng(64);
  const n = 50000;
  const words = new Uint32Array(2 * n);
  for (let i = 0; i < words.length; i++) words[i] = Math.floor(rand() * 2 ** 32);
  const data = new Float64Array(words.buffer);
  for (let i = 0; i < n / 4; i++) data[i] = (rand() - 0.5) * 10;
  data.set([0.1, 2, -0, 0, 5e-324, 1.7976931348623157e308, 123456789012345680000, 1e21, NaN, -Infinity], n / 4);
  const texts = new Map<string, string>();
  for (const [which, w] of impls) {
    const out = w.writeFloat64Json(data, [n]);
    texts.set(which, out);
    const back = readBack(out) as number[];
    let bad = 0;
    for (let i = 0; i < n; i++) if (!(Number.isNaN(data[i]) ? Number.isNaN(back[i]) : Object.is(back[i], data[i]))) bad++;
    t.equal(bad, 0, `${which}: exact round trip`);
    t.equal(w.writeFloat64Json(Float64Array.of(0.1, 2, -0, 1e21, 5e-324), [5]), '[0.1,2.0,-0.0,1e+21,5e-324]', `${which}: texts`);
  }
  if (nativeLoaded) t.equal(texts.get('native'), texts.get('js'), 'native and JS texts are identical');
});

t.test('shapes: nesting, zero dims, scalars', async (t) => {
  for (const [which, w] of impls) {
    const d = Float32Array.from({ length: 24 }, (_, i) => i + 0.5);
    t.same(readBack(w.writeFloat32Json(d, [2, 3, 4])), [
      [[0.5, 1.5, 2.5, 3.5], [4.5, 5.5, 6.5, 7.5], [8.5, 9.5, 10.5, 11.5]],
      [[12.5, 13.5, 14.5, 15.5], [16.5, 17.5, 18.5, 19.5], [20.5, 21.5, 22.5, 23.5]],
    ], `${which}: [2,3,4]`);
    t.equal(w.writeFloat32Json(new Float32Array(0), [0]), '[]', `${which}: [0]`);
    t.equal(w.writeFloat32Json(new Float32Array(0), [1, 0]), '[[]]', `${which}: [1,0]`);
    t.equal(w.writeFloat32Json(new Float32Array(0), [2, 0]), '[[],[]]', `${which}: [2,0]`);
    t.equal(w.writeFloat32Json(new Float32Array(0), [0, 2]), '[]', `${which}: [0,2] (the reference gives null)`);
    t.equal(w.writeFloat32Json(Float32Array.of(7), []), '7.0', `${which}: scalar`);
    t.equal(w.writeFloat32Json(Float32Array.of(7), [1, 1, 1]), '[[[7.0]]]', `${which}: [1,1,1]`);
  }
});

t.test('ints and bools', async (t) => {
  for (const [which, w] of impls) {
    t.equal(w.writeIntJson(Int32Array.of(-2147483648, 0, 2147483647), [3]), '[-2147483648,0,2147483647]', `${which}: int32`);
    t.equal(w.writeIntJson(Int8Array.of(-128, 127), [2, 1]), '[[-128],[127]]', `${which}: int8`);
    t.equal(w.writeIntJson(Uint8Array.of(0, 255), [2]), '[0,255]', `${which}: uint8`);
    t.equal(w.writeIntJson(Uint16Array.of(65535), []), '65535', `${which}: uint16 scalar`);
    t.equal(w.writeIntJson(Uint32Array.of(4294967295), [1]), '[4294967295]', `${which}: uint32`);
    t.equal(
      w.writeIntJson(BigInt64Array.of(-9223372036854775808n, 9223372036854775807n), [2]),
      '[-9223372036854775808,9223372036854775807]',
      `${which}: int64 exact`,
    );
    t.equal(w.writeIntJson(BigUint64Array.of(18446744073709551615n), [1]), '[18446744073709551615]', `${which}: uint64 exact`);
    t.equal(w.writeBoolJson(Uint8Array.of(1, 0, 2, 0), [2, 2]), '[[true,false],[true,false]]', `${which}: bools`);
  }
  if (nativeLoaded) {
    const rand = prng(8);
    const i32 = Int32Array.from({ length: 10000 }, () => Math.floor((rand() - 0.5) * 2 ** 32));
    t.equal(writeIntJson(i32, [100, 100]), js.writeIntJson(i32, [100, 100]), 'int32: native = JS');
  }
});

t.test('the parser reads the writer back (floats stay floats)', async (t) => {
  for (const [which, w] of impls) {
    const d = Float32Array.of(1, 2.5, -3, 0);
    const body = `{"instances":[{"y":${w.writeFloat32Json(d, [2, 2])}}]}`;
    const r = parseInstances(bytes(body)).instances[0]!['y']!;
    t.same(r, { kind: 'numbers', shape: [2, 2], data: Float64Array.of(1, 2.5, -3, 0), integers: false }, `${which}`);
  }
});

t.test('argument errors are the same with and without the addon', async (t) => {
  const bad: Array<[string, (w: Writers) => unknown, RegExp, string]> = [
    ['length mismatch', (w) => w.writeFloat32Json(new Float32Array(3), [2, 2]), /^shape does not match the data length 3$/, 'Error'],
    ['negative dim', (w) => w.writeFloat32Json(new Float32Array(0), [2, -1]), /^shape dimension 1 is not a non-negative integer$/, 'Error'],
    ['fractional dim', (w) => w.writeFloat64Json(new Float64Array(2), [2.5]), /^shape dimension 0 is not a non-negative integer$/, 'Error'],
    ['NaN dim', (w) => w.writeIntJson(new Int32Array(0), [NaN]), /^shape dimension 0 is not a non-negative integer$/, 'Error'],
    ['rank 65', (w) => w.writeFloat32Json(new Float32Array(1), new Array(65).fill(1)), /^shape has more than 64 dimensions$/, 'Error'],
    ['bracket bomb', (w) => w.writeFloat32Json(new Float32Array(0), [2 ** 40, 0]), /^JSON output too large$/, 'Error'],
    ['wrong array type', (w) => w.writeFloat32Json(new Float64Array(1) as unknown as Float32Array, [1]), /Float32Array/, 'TypeError'],
    ['float array to writeIntJson', (w) => w.writeIntJson(new Float32Array(1) as unknown as Int32Array, [1]), /integer typed array/, 'TypeError'],
    ['shape not an array', (w) => w.writeFloat32Json(new Float32Array(1), 1 as unknown as number[]), /shape must be an array/, 'TypeError'],
  ];
  for (const [name, make, message, cls] of bad) {
    for (const [which, w] of impls) {
      t.throws(() => make(w), { name: cls, code: 'E_INVALID_ARGUMENT', message }, `${which}: ${name}`);
    }
  }
});

t.test('writeJsonInto: the same text as bytes, at an offset, -1 when it does not fit', async (t) => {
  type Into = (data: JsonWritable, shape: readonly number[], target: Uint8Array, offset: number, asBool?: boolean) => number;
  const intos: ReadonlyArray<readonly [string, Into]> = nativeCodec ? [['native', nativeCodec.writeJsonInto], ['js', js.writeJsonInto]] : [['js', js.writeJsonInto]];
  const rand = prng(11);
  // Each writer's longest element texts too, so that jsonTextBound is seen to hold.
  const cases: Array<[string, JsonWritable, number[], boolean, string]> = [
    ['float32', Float32Array.from({ length: 600 }, () => (rand() - 0.5) * 100), [20, 30], false, ''],
    ['float32 longest', Float32Array.of(-123456789e12, -0.00000123456789, -1.2345678e-38), [3], false, ''],
    ['float64 longest', Float64Array.of(-0.0000012345678901234567, -123456789012345680000, -1.2345678901234567e-100), [3], false, ''],
    ['int64', BigInt64Array.of(-9223372036854775808n, 7n), [2], false, ''],
    ['uint8', Uint8Array.of(0, 255, 7), [3, 1], false, ''],
    ['bool', Uint8Array.of(0, 1, 0, 0), [2, 2], true, ''],
    ['empty', new Float32Array(0), [4, 0], false, ''],
  ];
  for (const c of cases) {
    const [, data, shape, asBool] = c;
    c[4] = asBool ? js.writeBoolJson(data as Uint8Array, shape) : data instanceof Float32Array ? js.writeFloat32Json(data, shape) : data instanceof Float64Array ? js.writeFloat64Json(data, shape) : js.writeIntJson(data, shape);
  }
  for (const [which, into] of intos) {
    for (const [name, data, shape, asBool, text] of cases) {
      const bound = jsonTextBound(data, shape, asBool);
      t.ok(bound >= text.length, `${which} ${name}: the bound covers the text`);
      const target = new Uint8Array(7 + bound).fill(0x2a);
      const end = into(data, shape, target, 7, asBool);
      t.equal(end, 7 + text.length, `${which} ${name}: end offset`);
      t.equal(Buffer.from(target.subarray(7, end)).toString('latin1'), text, `${which} ${name}: the writer's text`);
      t.same([...target.subarray(0, 7)], new Array(7).fill(0x2a), `${which} ${name}: bytes before the offset untouched`);
      if (text.length > 0) t.equal(into(data, shape, new Uint8Array(7 + text.length - 1), 7, asBool), -1, `${which} ${name}: one byte short`);
    }
    const bad: Array<[string, () => unknown, RegExp, string]> = [
      ['offset past the end', () => into(Float32Array.of(1), [1], new Uint8Array(4), 5), /offset 5 is outside/, 'RangeError'],
      ['fractional offset', () => into(Float32Array.of(1), [1], new Uint8Array(40), 0.5), /offset 0.5 is outside/, 'RangeError'],
      ['target not bytes', () => into(Float32Array.of(1), [1], new Uint16Array(40) as unknown as Uint8Array, 0), /target must be a Uint8Array/, 'TypeError'],
      ['asBool with floats', () => into(Float32Array.of(1), [1], new Uint8Array(40), 0, true), /Uint8Array \(asBool\)/, 'TypeError'],
      ['shape mismatch', () => into(Float32Array.of(1, 2), [3], new Uint8Array(400), 0), /^shape does not match the data length 2$/, 'Error'],
    ];
    for (const [name, make, message, cls] of bad) t.throws(make, { name: cls, code: 'E_INVALID_ARGUMENT', message }, `${which}: ${name}`);
  }
});
