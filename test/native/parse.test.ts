// parseInstances: a table of good and bad REST bodies; the addon and the JS twin must give
// the same result, or the same error (class, code, byte position and message).
import t from 'tap';
import { js, native, nativeLoaded, parseInstances, SMALL_BODY, type ParsedValue } from '../../dist/native/index.js';
import { bytes, outcome } from './helpers.js';

// The addon's parser itself (the top-level parseInstances hands bodies under SMALL_BODY bytes
// to the JS twin), and the JS twin.
const both = native ? ([['native', native.parseInstances], ['js', js.parseInstances]] as const) : ([['js', js.parseInstances]] as const);

/** A value that must be numbers: its data. */
function numbers(v: ParsedValue | undefined): Float64Array {
  if (v?.kind !== 'numbers') throw new Error(`expected numbers, got ${v?.kind}`);
  return v.data;
}

/** Per input: the value with `data` as a plain array. */
type Expect = Record<string, Record<string, unknown>>;

interface Good {
  body: string;
  instances: Expect[];
  single?: boolean;
}

const good: Record<string, Good> = {
  'MindSpore example (one object)': {
    body: '{"instances":{"x1":[[1.0,1.0],[1.0,1.0]],"x2":[[1.0,1.0],[1.0,1.0]]}}',
    single: true,
    instances: [
      {
        x1: { kind: 'numbers', shape: [2, 2], data: [1, 1, 1, 1], integers: false },
        x2: { kind: 'numbers', shape: [2, 2], data: [1, 1, 1, 1], integers: false },
      },
    ],
  },
  'list of instances, ints': {
    body: ' {"instances" : [ {"a": 1}, {"a": [1, -2, 3]} ] } \n',
    instances: [{ a: { kind: 'numbers', shape: [], data: [1], integers: true } }, { a: { kind: 'numbers', shape: [3], data: [1, -2, 3], integers: true } }],
  },
  'ints and floats mixed: integers=false': {
    body: '{"instances":[{"a":[1, 2.5, 3e2, -0.0, 1E-2]}]}',
    instances: [{ a: { kind: 'numbers', shape: [5], data: [1, 2.5, 300, -0, 0.01], integers: false } }],
  },
  'long integers and big exponents': {
    body: '{"instances":[{"a":[123456789012345678901234567890, -9007199254740993, 1e308, 1e-400, -1e-400]}]}',
    instances: [{ a: { kind: 'numbers', shape: [5], data: [1.2345678901234568e29, -9007199254740992, 1e308, 0, -0], integers: false } }],
  },
  'bools and strings': {
    body: '{"instances":[{"b":[[true],[false]],"s":"h\\u00e9llo \\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t","t":["x","y"],"u":"wörld €𝄞"}]}',
    instances: [
      {
        b: { kind: 'bools', shape: [2, 1], data: [1, 0] },
        s: { kind: 'strings', shape: [], data: ['héllo 😀 "q" \\ / \b\f\n\r\t'] },
        t: { kind: 'strings', shape: [2], data: ['x', 'y'] },
        u: { kind: 'strings', shape: [], data: ['wörld €𝄞'] },
      },
    ],
  },
  'scalars': {
    body: '{"instances":[{"n":-7,"f":0.5,"t":true,"s":""}]}',
    instances: [
      {
        n: { kind: 'numbers', shape: [], data: [-7], integers: true },
        f: { kind: 'numbers', shape: [], data: [0.5], integers: false },
        t: { kind: 'bools', shape: [], data: [1] },
        s: { kind: 'strings', shape: [], data: [''] },
      },
    ],
  },
  'empty lists: zero-sized float tensors': {
    body: '{"instances":[{"a":[],"b":[[],[]],"c":[[[]]]}]}',
    instances: [
      {
        a: { kind: 'numbers', shape: [0], data: [], integers: false },
        b: { kind: 'numbers', shape: [2, 0], data: [], integers: false },
        c: { kind: 'numbers', shape: [1, 1, 0], data: [], integers: false },
      },
    ],
  },
  'b64 objects keep type and shape raw': {
    body: '{"instances":[{"a":{"b64":"AAAAAA=="},"b":{"shape":[2, 0, 1],"type":"whatever","b64":""}}]}',
    instances: [{ a: { kind: 'b64', b64: 'AAAAAA==' }, b: { kind: 'b64', b64: '', type: 'whatever', shape: [2, 0, 1] } }],
  },
  'a list holding one b64 object gets a leading dim of 1 (MindSpore\'s bytes of shape [1])': {
    body: '{"instances":[{"a":[ {"b64":"AAEC"} ],"b":[{"b64":"AAAAAAAAAAA=","type":"fp32","shape":[2]}]}]}',
    instances: [{ a: { kind: 'b64', b64: 'AAEC', shape: [1] }, b: { kind: 'b64', b64: 'AAAAAAAAAAA=', type: 'fp32', shape: [1, 2] } }],
  },
  'zero instances, empty instance, other top-level keys ignored': {
    body: '{"meta":{"k":[1,{"x":null}],"z":"\\u0000"},"instances":[],"more":[true,false,null,-1.5e3]}',
    instances: [],
  },
  'an empty instance object': { body: '{"instances":[{}]}', instances: [{}] },
  'keys that shadow Object.prototype stay own keys': {
    body: '{"instances":[{"constructor":1,"toString":2,"hasOwnProperty":3}]}',
    instances: [
      {
        constructor: { kind: 'numbers', shape: [], data: [1], integers: true },
        toString: { kind: 'numbers', shape: [], data: [2], integers: true },
        hasOwnProperty: { kind: 'numbers', shape: [], data: [3], integers: true },
      },
    ],
  },
  'a rank-61 tensor (64 levels of nesting in all)': {
    body: `{"instances":[{"a":${'['.repeat(61)}1${']'.repeat(61)}}]}`,
    instances: [{ a: { kind: 'numbers', shape: new Array(61).fill(1), data: [1], integers: true } }],
  },
};

for (const [name, c] of Object.entries(good)) {
  t.test(`good: ${name}`, async (t) => {
    for (const [which, parse] of both) {
      const r = parse(bytes(c.body));
      t.equal(r.single, c.single ?? false, `${which}: single`);
      t.equal(r.instances.length, c.instances.length, `${which}: instance count`);
      r.instances.forEach((inst, k) => {
        t.equal(Object.getPrototypeOf(inst), null, `${which}: instance ${k} has a null prototype`);
        t.same(Object.keys(inst), Object.keys(c.instances[k]!), `${which}: instance ${k} keys in body order`);
        for (const [input, want] of Object.entries(c.instances[k]!)) {
          const got = inst[input]!;
          const plain = { ...got, ...('data' in got ? { data: Array.from(got.data as ArrayLike<number | string>) } : {}) };
          t.strictSame(plain, want, `${which}: instance ${k} input ${input}`);
          if (got.kind === 'numbers') t.type(got.data, Float64Array);
          if (got.kind === 'bools') t.type(got.data, Uint8Array);
        }
      });
    }
    if (native) t.equal(outcome(native.parseInstances, bytes(c.body)), outcome(js.parseInstances, bytes(c.body)), 'native and JS agree exactly');
  });
}

// [body, position, message] — the message is matched exactly (with the " (at byte N)" suffix).
const bad: Array<[string, string | Uint8Array, number, string]> = [
  ['empty body', '', 0, 'invalid JSON: unexpected end of body'],
  ['whitespace only', ' \n', 2, 'invalid JSON: unexpected end of body'],
  ['top-level list', '[{"instances":[]}]', 0, "the body must be a JSON object with an 'instances' key"],
  ['no instances key', ' {"x":1}', 1, "the body has no 'instances' key"],
  ['instances is a number', '{"instances":5}', 13, "'instances' must be a list of objects or an object"],
  ['instance not an object', '{"instances":[{},[1]]}', 17, 'instance 1 must be an object'],
  ['trailing comma in instances', '{"instances":[{},]}', 17, 'instance 1 must be an object'],
  ['duplicate instances key', '{"instances":[],"instances":[]}', 16, "duplicate key 'instances'"],
  ['duplicate input (escaped spelling)', '{"instances":[{"x":1,"\\u0078":2}]}', 21, "duplicate key 'x'"],
  ['__proto__ input', '{"instances":[{"__proto__":1}]}', 15, "key '__proto__' is not allowed"],
  ['__proto__ in an ignored value', '{"a":{"__proto__":{}},"instances":[]}', 6, "key '__proto__' is not allowed"],
  ['trailing data', '{"instances":[]} {}', 17, 'invalid JSON: unexpected data after the top-level value'],
  ['ragged (longer)', '{"instances":[{"x1":[[1,2],[3,4,5]]}]}', 27, "instance 0, input 'x1': ragged list at [1]: expected 2 elements, got 3"],
  ['ragged (shorter)', '{"instances":[{"x1":[[1,2],[3]]}]}', 27, "instance 0, input 'x1': ragged list at [1]: expected 2 elements, got 1"],
  ['ragged (scalar for list)', '{"instances":[{"x1":[[1,2],3]}]}', 27, "instance 0, input 'x1': ragged list at [1]: expected a list of 2 elements, got a number"],
  ['ragged (list for scalar)', '{"instances":[{"x1":[[1,2],[3,[4]]]}]}', 30, "instance 0, input 'x1': ragged list at [1,1]: expected a scalar, got a list"],
  ['ragged after empty', '{"instances":[{"x":[[],[1]]}]}', 23, "instance 0, input 'x': ragged list at [1]: expected 0 elements, got 1"],
  ['mixed numbers and strings', '{"instances":[{"x1":[1,"a"]}]}', 23, "instance 0, input 'x1': mixed element kinds at [1]: expected a number, got a string"],
  ['mixed bools and numbers', '{"instances":[{"b":[true,1]}]}', 25, "instance 0, input 'b': mixed element kinds at [1]: expected a bool, got a number"],
  ['null value', '{"instances":[{"x":null}]}', 19, "instance 0, input 'x': null is not supported"],
  ['null in a list', '{"instances":[{"x":[1,null]}]}', 22, "instance 0, input 'x': null is not supported at [1]"],
  ['object deeper in a list', '{"instances":[{"x":[[{"b64":""}]]}]}', 21, "instance 0, input 'x': objects are not supported inside lists at [0,0]"],
  ['object after a number in a list', '{"instances":[{"x":[1,{"b64":""}]}]}', 22, "instance 0, input 'x': objects are not supported inside lists at [1]"],
  ['two b64 objects in a list', '{"instances":[{"x":[{"b64":""},{"b64":""}]}]}', 30, "instance 0, input 'x': a list may hold one {\"b64\": ...} object (a tensor with a leading dim of 1); send more as one object with a shape"],
  ['a b64 object then a number', '{"instances":[{"x":[{"b64":""} 1]}]}', 31, "instance 0, input 'x': invalid JSON: expected ']' after a list element, got '1'"],
  ['a listed b64 object unclosed', '{"instances":[{"x":[{"b64":""}', 30, "instance 0, input 'x': invalid JSON: unexpected end of body"],
  ['NaN', '{"instances":[{"x":NaN}]}', 19, "instance 0, input 'x': invalid JSON: NaN and Infinity are not JSON numbers"],
  ['-Infinity in a list', '{"instances":[{"x":[1,-Infinity]}]}', 22, "instance 0, input 'x': invalid JSON: NaN and Infinity are not JSON numbers"],
  ['number overflow', '{"instances":[{"x":[1e309]}]}', 20, "instance 0, input 'x': invalid JSON: number out of range"],
  ['leading zero', '{"instances":[{"x":012}]}', 19, "instance 0, input 'x': invalid JSON: invalid number (leading zero)"],
  ['bare minus', '{"instances":[{"x":-}]}', 19, "instance 0, input 'x': invalid JSON: invalid number (no digits after '-')"],
  ['no fraction digits', '{"instances":[{"x":1.}]}', 19, "instance 0, input 'x': invalid JSON: invalid number (no digits after '.')"],
  ['no exponent digits', '{"instances":[{"x":1e+}]}', 19, "instance 0, input 'x': invalid JSON: invalid number (no digits in exponent)"],
  ['plus sign', '{"instances":[{"x":+1}]}', 19, "instance 0, input 'x': invalid JSON: unexpected '+'"],
  ['bad literal', '{"instances":[{"x":[tru]}]}', 20, "instance 0, input 'x': invalid JSON: invalid literal"],
  ['trailing comma in a list', '{"instances":[{"x":[1,]}]}', 22, "instance 0, input 'x': invalid JSON: unexpected ']'"],
  ['missing comma', '{"instances":[{"x":[1 2]}]}', 22, "instance 0, input 'x': invalid JSON: expected ',' or ']' after a list element, got '2'"],
  ['missing colon', '{"instances":[{"x" 1}]}', 19, "invalid JSON: expected ':' after a key, got '1'"],
  ['unquoted key', '{"instances":[{x:1}]}', 15, "invalid JSON: expected a string key, got 'x'"],
  ['single quotes', "{'instances':[]}", 1, "invalid JSON: expected a string key, got '''"],
  ['truncated', '{"instances":[{"x":[1,2', 23, "instance 0, input 'x': invalid JSON: unexpected end of body"],
  ['unterminated string', '{"instances":[{"x":"abc', 23, "instance 0, input 'x': invalid JSON: unexpected end of body"],
  ['raw newline in a string', '{"instances":[{"x":"a\nb"}]}', 21, "instance 0, input 'x': invalid JSON: control character 0x0A in a string"],
  ['bad escape', '{"instances":[{"x":"\\q"}]}', 20, "instance 0, input 'x': invalid JSON: invalid escape sequence"],
  ['bad \\u escape', '{"instances":[{"x":"\\u12G4"}]}', 20, "instance 0, input 'x': invalid JSON: invalid \\u escape"],
  ['lone high surrogate', '{"instances":[{"x":"\\ud83d!"}]}', 20, "instance 0, input 'x': invalid JSON: unpaired UTF-16 surrogate in a \\u escape"],
  ['lone low surrogate', '{"instances":[{"x":"\\ude00"}]}', 20, "instance 0, input 'x': invalid JSON: unpaired UTF-16 surrogate in a \\u escape"],
  ['high + non-low surrogate', '{"instances":[{"x":"\\ud83d\\u0041"}]}', 20, "instance 0, input 'x': invalid JSON: unpaired UTF-16 surrogate in a \\u escape"],
  ['invalid UTF-8 (lone continuation)', Uint8Array.of(...bytes('{"instances":[{"x":"a'), 0x80, ...bytes('"}]}')), 21, "instance 0, input 'x': invalid UTF-8 in a string"],
  ['invalid UTF-8 (overlong)', Uint8Array.of(...bytes('{"instances":[{"x":"'), 0xc0, 0xaf, ...bytes('"}]}')), 20, "instance 0, input 'x': invalid UTF-8 in a string"],
  ['invalid UTF-8 (surrogate)', Uint8Array.of(...bytes('{"instances":[{"x":"'), 0xed, 0xa0, 0x80, ...bytes('"}]}')), 20, "instance 0, input 'x': invalid UTF-8 in a string"],
  ['invalid UTF-8 (> U+10FFFF)', Uint8Array.of(...bytes('{"instances":[{"x":"'), 0xf4, 0x90, 0x80, 0x80, ...bytes('"}]}')), 20, "instance 0, input 'x': invalid UTF-8 in a string"],
  ['invalid UTF-8 (truncated at end)', Uint8Array.of(...bytes('{"instances":[{"x":"'), 0xe2, 0x82), 20, "instance 0, input 'x': invalid UTF-8 in a string"],
  ['invalid UTF-8 in a key', Uint8Array.of(...bytes('{"instances":[{"'), 0xff, ...bytes('":1}]}')), 16, 'invalid UTF-8 in a string'],
  ['non-ASCII byte outside strings', Uint8Array.of(...bytes('{"instances":[{"x":'), 0xc3, 0xa9, ...bytes('}]}')), 19, "instance 0, input 'x': invalid JSON: unexpected byte 0xC3"],
  ['UTF-8 BOM', Uint8Array.of(0xef, 0xbb, 0xbf, ...bytes('{"instances":[]}')), 0, "the body must be a JSON object with an 'instances' key"],
  ['b64 not a string', '{"instances":[{"x":{"b64":1}}]}', 26, "instance 0, input 'x': 'b64' must be a string"],
  ['b64 missing', '{"instances":[{"x":{"type":"fp32"}}]}', 19, "instance 0, input 'x': 'b64' is missing in a {\"b64\": ...} object"],
  ['b64 object empty', '{"instances":[{"x":{}}]}', 19, "instance 0, input 'x': 'b64' is missing in a {\"b64\": ...} object"],
  ['b64 unknown key', '{"instances":[{"x":{"b64":"","extra":1}}]}', 29, "instance 0, input 'x': unexpected key 'extra' in a {\"b64\": ...} object (allowed: b64, type, shape)"],
  ['b64 duplicate key', '{"instances":[{"x":{"b64":"","b64":""}}]}', 29, "instance 0, input 'x': duplicate key 'b64'"],
  ['type not a string', '{"instances":[{"x":{"b64":"","type":3}}]}', 36, "instance 0, input 'x': 'type' must be a string"],
  ['shape not a list', '{"instances":[{"x":{"b64":"","shape":3}}]}', 37, "instance 0, input 'x': 'shape' must be a list of non-negative integers"],
  ['shape with a float', '{"instances":[{"x":{"b64":"","shape":[1,3.0]}}]}', 40, "instance 0, input 'x': 'shape' must be a list of non-negative integers"],
  ['shape with a negative', '{"instances":[{"x":{"b64":"","shape":[-1]}}]}', 38, "instance 0, input 'x': 'shape' must be a list of non-negative integers"],
  ['shape nested', '{"instances":[{"x":{"b64":"","shape":[[1]]}}]}', 38, "instance 0, input 'x': 'shape' must be a list of non-negative integers"],
  ['shape too big', '{"instances":[{"x":{"b64":"","shape":[9007199254740992]}}]}', 38, "instance 0, input 'x': 'shape' must be a list of non-negative integers"],
  ['nesting 65 deep in a value', `{"instances":[{"a":${'['.repeat(62)}1${']'.repeat(62)}}]}`, 80, "instance 0, input 'a': nesting deeper than 64 levels"],
  ['nesting 65 deep in an ignored value', `{"x":${'['.repeat(64)}${']'.repeat(64)},"instances":[]}`, 68, 'nesting deeper than 64 levels'],
  ['long input names are cut in messages', `{"instances":[{"${'é'.repeat(70)}":null}]}`, 158, `instance 0, input '${'é'.repeat(64)}...': null is not supported`],
];

for (const [name, body, position, message] of bad) {
  t.test(`bad: ${name}`, async (t) => {
    const b = typeof body === 'string' ? bytes(body) : body;
    for (const [which, parse] of both) {
      let err: (Error & { code?: string; position?: number }) | undefined;
      try {
        parse(b);
      } catch (e) {
        err = e as Error & { code?: string; position?: number };
      }
      if (!err) {
        t.fail(`${which}: accepted`);
        continue;
      }
      t.equal(err.constructor, Error, `${which}: a plain Error`);
      t.equal(err.code, 'E_INVALID_ARGUMENT', `${which}: code`);
      t.equal(err.position, position, `${which}: position`);
      t.equal(err.message, `${message} (at byte ${position})`, `${which}: message`);
    }
  });
}

t.test('non-Uint8Array bodies are a TypeError', async (t) => {
  for (const [which, parse] of both) {
    for (const body of ['{"instances":[]}', new Uint16Array(4), null, undefined]) {
      t.throws(() => parse(body as unknown as Uint8Array), { name: 'TypeError', code: 'E_INVALID_ARGUMENT' }, `${which}: ${String(body)}`);
    }
  }
});

t.test('a Buffer and a view at an offset parse the bytes they show', async (t) => {
  const text = 'XXXX{"instances":{"a":[1,2]}}YYYY';
  const whole = Buffer.from(text);
  const view = whole.subarray(4, whole.length - 4);
  const copy = new Uint8Array(view.length);
  copy.set(view);
  for (const [which, parse] of both) {
    t.same(Array.from((parse(view).instances[0]!['a'] as { data: Float64Array }).data), [1, 2], `${which}: Buffer view`);
    t.same(Array.from((parse(new Uint8Array(whole.buffer, whole.byteOffset + 4, view.length)).instances[0]!['a'] as { data: Float64Array }).data), [1, 2], `${which}: Uint8Array view`);
    t.same(Array.from((parse(copy).instances[0]!['a'] as { data: Float64Array }).data), [1, 2], `${which}: copy`);
  }
});

t.test('deep nesting far past the limit fails fast, without a stack overflow', async (t) => {
  const deep = `{"instances":[{"a":${'['.repeat(200000)}`;
  const deepIgnored = `{"x":${'{"a":'.repeat(100000)}`;
  for (const [which, parse] of both) {
    t.throws(() => parse(bytes(deep)), { code: 'E_INVALID_ARGUMENT', message: /nesting deeper than 64 levels/ }, `${which}: lists`);
    t.throws(() => parse(bytes(deepIgnored)), { code: 'E_INVALID_ARGUMENT', message: /nesting deeper than 64 levels/ }, `${which}: objects`);
  }
});

t.test('many keys: duplicate detection stays fast', async (t) => {
  const n = 50000;
  const keys = Array.from({ length: n }, (_, i) => `"k${i}":${i}`);
  const body = bytes(`{"instances":[{${keys.join(',')}}]}`);
  const dup = bytes(`{"instances":[{${keys.join(',')},"k123":0}]}`);
  for (const [which, parse] of both) {
    const started = Date.now();
    t.equal(Object.keys(parse(body).instances[0]!).length, n, `${which}: ${n} inputs`);
    t.throws(() => parse(dup), { message: /duplicate key 'k123'/ }, `${which}: duplicate found`);
    t.ok(Date.now() - started < 5000, `${which}: linear time`);
  }
});

t.test('the top-level parseInstances: small bodies go to the JS twin, the same result either way', async (t) => {
  const small = bytes('{"instances":{"x":[1,2]}}');
  const padded = bytes(`{"pad":"${' '.repeat(SMALL_BODY)}","instances":{"x":[1,2]}}`);
  t.ok(small.length < SMALL_BODY && padded.length >= SMALL_BODY);
  for (const body of [small, padded]) {
    t.equal(outcome(parseInstances, body), outcome(js.parseInstances, body), `${body.length} bytes`);
  }
  t.equal(nativeLoaded, native !== undefined);
});

t.test('numbers of many small values: each its own view of the right elements, large values apart', async (t) => {
  // Native puts every numeric value under 256 KiB in one ArrayBuffer shared by the request
  // (one ArrayBuffer per value costs ~1 us each), and gives larger ones their own.
  const large = Array.from({ length: 40000 }, (_, i) => i % 7); // 320 KB of doubles
  const body = JSON.stringify({
    instances: [
      ...Array.from({ length: 300 }, (_, i) => ({ a: [[i, 0.5], [-i, 2]], b: i * 0.25, c: [] })),
      { a: [[1, 2], [3, 4]], b: 7, c: large },
    ],
  });
  for (const [which, parse] of both) {
    const { instances } = parse(bytes(body));
    let wrong = 0;
    instances.forEach((inst, i) => {
      const a = inst['a']!;
      const b = inst['b']!;
      const want = i < 300 ? [i, 0.5, -i, 2] : [1, 2, 3, 4];
      if (a.kind !== 'numbers' || a.data.length !== 4 || want.some((x, k) => a.data[k] !== x)) wrong++;
      if (b.kind !== 'numbers' || b.data.length !== 1 || b.data[0] !== (i < 300 ? i * 0.25 : 7)) wrong++;
    });
    t.equal(wrong, 0, `${which}: every value holds its own elements`);
    const big = instances[300]!['c']!;
    t.ok(big.kind === 'numbers' && big.data.length === 40000 && big.data.every((x, i) => x === i % 7), `${which}: the large value`);
    // Writing one value never shows in another (views do not overlap).
    const first = numbers(instances[0]!['a']);
    first.fill(-99);
    t.same([...numbers(instances[0]!['b'])], [0], `${which}: neighbours untouched`);
    t.same([...numbers(instances[1]!['a'])], [1, 0.5, -1, 2], `${which}: the next instance untouched`);
    if (which === 'native') {
      t.equal(numbers(instances[5]!['a']).buffer, first.buffer, 'native: small values share one buffer');
      t.not(numbers(big).buffer, first.buffer, 'native: a large value has its own');
      t.equal(numbers(big).byteOffset, 0);
    }
  }
});
