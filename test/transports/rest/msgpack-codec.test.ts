// The msgpack side: the structural pre-check of untrusted bodies, request decoding, replies.
import t from 'tap';
import { Packr, Unpackr } from 'msgpackr';
import { scanMsgpack } from '../../../dist/transports/rest/msgpack-scan.js';
import { decodeMsgpackRequest, encodeMsgpackReply } from '../../../dist/transports/rest/msgpack-codec.js';
import { ServingError } from '../../../dist/engine/errors.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

t.test('scanMsgpack accepts what msgpackr writes', async (t) => {
  const values = [
    { instances: [{ x: 1, y: -1.5, s: 'é'.repeat(40), b: Buffer.alloc(300), l: Array.from({ length: 70000 }, (_, i) => i) }] },
    { n: null, t: true, f: false, big: 2n ** 63n - 1n, neg: -(2n ** 40n), u8: 200, i16: -30000, f32: Math.fround(1.5), m: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])) },
    'x'.repeat(70000),
  ];
  for (const v of values) t.doesNotThrow(() => scanMsgpack(packr.pack(v), 64));
  const typed = new Packr({ useRecords: false, moreTypes: true }).pack({ d: Float32Array.of(1, 2), e: new BigInt64Array(3) });
  t.doesNotThrow(() => scanMsgpack(typed, 64), 'msgpackr typed arrays (ext 0x74) are accepted');
});

t.test('scanMsgpack refuses', async (t) => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['nothing', Uint8Array.of(), /ends in the middle of a value/],
    ['a truncated str', Uint8Array.of(0xd9, 10, 0x61), /ends in the middle/],
    ['an unused byte', Uint8Array.of(0xc1), /byte 0xc1 starts no msgpack value/],
    ['a huge map', Uint8Array.of(0xdf, 0x10, 0, 0, 0, 1, 2), /a map announces 268435456 entries but only 2 bytes follow/],
    ['depth 65', Uint8Array.from([...new Array<number>(65).fill(0x91), 0x01]), /nest deeper than 64 levels/],
    ['two values', Uint8Array.of(0x01, 0x02), /1 bytes follow the end of the value/],
    ['a record definition', new Packr({ useRecords: true }).pack([{ a: 1 }]), /extension type 114 is not accepted/],
    ['bundled strings', new Packr({ bundleStrings: true, useRecords: false }).pack({ a: 'a long enough string to bundle' }), /extension type/],
    ['a __proto__ key', packr.pack(JSON.parse('{"a":{"__proto__":1}}')), /"__proto__" map key/],
  ];
  for (const [name, bytes, message] of cases) t.throws(() => scanMsgpack(bytes, 64), { code: 'E_INVALID_ARGUMENT', message }, name);
  t.doesNotThrow(() => scanMsgpack(new Uint8Array(64).fill(0x91).map((b, i) => (i === 63 ? 0x90 : b)), 64), 'depth 64 passes');
  t.doesNotThrow(() => scanMsgpack(packr.pack(['__proto__']), 64), '"__proto__" as a value (not a key) is fine');
});

t.test('decodeMsgpackRequest: tensor maps, plain values, b64 objects', async (t) => {
  const body = packr.pack({
    instances: [
      {
        a: { dtype: 'int16', shape: [2], data: Buffer.from(Int16Array.of(-1, 2).buffer) },
        b: { dtype: 'float64', data: Buffer.from(Float64Array.of(0.5).buffer) },
        c: [[1, 2], [3, 4]],
        d: { b64: Buffer.from(Uint8Array.of(1, 0, 1)).toString('base64'), type: 'bool', shape: [3] },
        e: { dtype: 'bytes', shape: [], data: [Buffer.from([9])] },
        f: { dtype: 'bool', shape: [2], data: Buffer.from([0, 7]) },
      },
    ],
  });
  const [inst] = decodeMsgpackRequest(body, [{ name: 'c', dtype: 'float32' }]);
  t.same(inst!.a, { dtype: 'int16', shape: [2], data: Int16Array.of(-1, 2) });
  t.same(inst!.b, { dtype: 'float64', shape: [1], data: Float64Array.of(0.5) }, 'no shape: 1-D');
  t.same(inst!.c, { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }, 'plain lists follow the JSON rules');
  t.same(inst!.d, { dtype: 'bool', shape: [3], data: Uint8Array.of(1, 0, 1) });
  t.same(inst!.e, { dtype: 'bytes', shape: [], data: [Uint8Array.of(9)] });
  t.same(inst!.f!.data, Uint8Array.of(0, 1), 'bool bytes are normalised');
  t.throws(() => decodeMsgpackRequest(packr.pack([1]), []), { message: /must be an object with an "instances" key, got a list/ });
  t.throws(() => decodeMsgpackRequest(packr.pack({ instances: { x: 2n ** 60n } }), []), { message: /beyond ±2\^53/ });
  // the checks shared with JSON bodies (json-codec.ts decodeInstances) and the b64 rules of the native parser
  t.throws(() => decodeMsgpackRequest(packr.pack({ instances: [] }), []), { code: 'E_NO_INSTANCES' });
  t.throws(() => decodeMsgpackRequest(packr.pack({ instances: [{ x: 1 }, {}] }), []), { message: /^instance 1 is an empty object: it names no inputs$/ });
  t.throws(() => decodeMsgpackRequest(packr.pack({ instances: { '': 1 } }), []), { message: /^instance 0 has an input with an empty name$/ });
  t.throws(() => decodeMsgpackRequest(packr.pack({ instances: { x: [[1], [2, 3]] } }), []), { message: /^instance 0, input 'x': the list at \[1\] has 2 elements/ });
  t.throws(() => decodeMsgpackRequest(packr.pack({ instances: { x: { b64: 'AA==', type: 5 } } }), []), { message: /input 'x': 'type' must be a string$/ });
  t.throws(() => decodeMsgpackRequest(packr.pack({ instances: { x: { b64: 7 } } }), []), { message: /input 'x': 'b64' must be a string$/ });
  t.throws(() => decodeMsgpackRequest(packr.pack({ instances: { x: { type: 'fp32' } } }), []), { message: /'b64' is missing/ });
  t.throws(() => decodeMsgpackRequest(packr.pack({ instances: { x: { b64: '', shape: [1, -1] } } }), []), { message: /'shape' must be a list of non-negative integers$/ });
  t.throws(() => decodeMsgpackRequest(packr.pack({ instances: { x: { b64: '', dims: [1] } } }), []), { message: /unexpected key "dims"/ });
  const [empty] = decodeMsgpackRequest(packr.pack({ instances: { x: [] } }), []);
  t.same(empty!.x, { dtype: 'float32', shape: [0], data: new Float32Array(0) }, 'an empty list is a zero-sized float tensor, as in JSON');
});

t.test('encodeMsgpackReply', async (t) => {
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
  const out = unpackr.unpack(
    encodeMsgpackReply([
      { y: { dtype: 'float32', shape: [2], data: Float32Array.of(NaN, 1) }, s: { dtype: 'string', shape: [2], data: [Buffer.from('ok'), Buffer.from([0xff])] } },
      new ServingError('E_INVALID_SHAPE', 'no'),
    ]),
  ) as { instances: [{ y: { dtype: string; shape: number[]; data: Uint8Array }; s: { data: [string, Uint8Array] } }, unknown] };
  const [first] = out.instances;
  t.equal(first.y.dtype, 'float32');
  t.same(first.y.shape, [2]);
  const y = new Float32Array(Uint8Array.from(first.y.data).buffer);
  t.ok(Number.isNaN(y[0]) && y[1] === 1, 'NaN travels as bits');
  t.equal(first.s.data[0], 'ok');
  t.same([...first.s.data[1]], [0xff], 'a string element that is not UTF-8 travels as bin');
  t.same(out.instances[1], { error_msg: 'no' });
});
