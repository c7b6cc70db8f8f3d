// Random mutations of valid bodies (fixed seed, bounded): the native parser never crashes or
// hangs, agrees exactly with the JS twin (result or error text), never accepts what
// JSON.parse rejects, and when it accepts, its numbers/bools/strings are JSON.parse's.
import t, { type Test } from 'tap';
import { js, native, type ParsedRequest } from '../../dist/native/index.js';
import { bytes, outcome, prng } from './helpers.js';

const SEEDS = [
  '{"instances":{"x1":[[1.0,1.0],[1.0,1.0]],"x2":[[1.0,1.0],[1.0,1.0]]}}',
  '{"instances":[{"a":1,"b":[1,2,3]},{"a":-2.5e-3,"b":[4,5,6]}]}',
  '{"instances":[{"image":[[[255,0,12],[1,2,3]],[[4,5,6],[7,8,9]]]}]}',
  '{"instances":[{"s":"h\\u00e9llo \\ud83d\\ude00","t":["a","b"],"u":"wörld"}]}',
  '{"instances":[{"b":[[true,false],[false,true]],"c":true}]}',
  '{"instances":[{"x":{"b64":"AAAAAA==","type":"fp32","shape":[1,1]}}]}',
  '{"meta":{"k":[1,{"x":null}],"z":"\\n"},"instances":[{"e":[[],[]],"z":0}],"more":[true,false,null]}',
  '{"instances":[{"n":[123456789012345678901234567890, 1e-320, 0.1, -0, 1E+2]}]}',
  '{ "instances" : [ { "a" : [ [ 1 , 2 ] , [ 3 , 4 ] ] } ] }',
];

// Bytes that matter to the grammar, plus some non-ASCII ones.
const ALPHABET = bytes('[]{},:"\\-+.eE0123456789tfnulrsaN I\n\t');
const rand = prng(0x5eed);
const int = (n: number) => Math.floor(rand() * n);

const isDigit = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x39;

/** A change that often keeps the body valid: digits edited, list elements added or dropped. */
function gentle(src: Uint8Array): Uint8Array {
  const b = Array.from(src);
  for (let tries = 0; tries < 20; tries++) {
    const at = int(b.length);
    if (isDigit(b[at])) {
      const k = int(4);
      if (k === 0) b[at] = 0x31 + int(9);
      else if (k === 1) b.splice(at + 1, 0, 0x30 + int(10));
      else if (k === 2 && b[at + 1] === 0x2c) b.splice(at + 1, 0, 0x2c, 0x31 + int(9)); // one more element
      else if (b[at - 1] === 0x2c) b.splice(at - 1, 2); // one element fewer (maybe ragged)
      else b.splice(at + 1, 0, 0x2e, 0x35); // n -> n.5
      return Uint8Array.from(b);
    }
  }
  return Uint8Array.from(b);
}

function mutate(src: Uint8Array): Uint8Array {
  if (rand() < 0.4) return gentle(src);
  let b = Array.from(src);
  const count = 1 + int(3);
  for (let m = 0; m < count; m++) {
    const at = int(b.length + 1);
    const pick = () => (rand() < 0.85 ? ALPHABET[int(ALPHABET.length)]! : 0x80 + int(128));
    switch (int(6)) {
      case 0: // replace a byte
        if (b.length > 0) b[Math.min(at, b.length - 1)] = pick();
        break;
      case 1: // insert a byte
        b.splice(at, 0, pick());
        break;
      case 2: // delete a run
        b.splice(at, 1 + int(4));
        break;
      case 3: {
        // duplicate a slice somewhere else
        const from = int(b.length);
        const piece = b.slice(from, from + 1 + int(12));
        b.splice(int(b.length + 1), 0, ...piece);
        break;
      }
      case 4: // truncate
        b = b.slice(0, at);
        break;
      default: {
        // swap two bytes
        const j = int(b.length);
        if (b.length > 0) [b[Math.min(at, b.length - 1)], b[j]] = [b[j]!, b[Math.min(at, b.length - 1)]!];
      }
    }
  }
  return Uint8Array.from(b);
}

function jsonParses(b: Uint8Array): boolean {
  try {
    JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
    return true;
  } catch {
    return false;
  }
}

/** Every leaf of a JSON value, row-major (what the flat data must hold). */
function leaves(v: unknown, out: unknown[] = []): unknown[] {
  if (Array.isArray(v)) for (const e of v) leaves(e, out);
  else out.push(v);
  return out;
}

function checkAgainstJsonParse(t: Test, b: Uint8Array, r: ParsedRequest, label: string): void {
  const doc = JSON.parse(new TextDecoder().decode(b)) as { instances: unknown };
  const list = (Array.isArray(doc.instances) ? doc.instances : [doc.instances]) as Record<string, unknown>[];
  if (list.length !== r.instances.length) {
    t.fail(`${label}: instance count`);
    return;
  }
  r.instances.forEach((inst, k) => {
    for (const [name, v] of Object.entries(inst)) {
      const want = list[k]![name];
      if (v.kind === 'b64') continue;
      const got = Array.from(v.data as ArrayLike<number | string>);
      const wantLeaves = leaves(want).map((x) => (typeof x === 'boolean' ? (x ? 1 : 0) : x));
      if (JSON.stringify(got) !== JSON.stringify(wantLeaves) || !got.every((x, i) => Object.is(x, wantLeaves[i]))) {
        t.fail(`${label}: input ${name} differs from JSON.parse`, { got, want: wantLeaves });
      }
    }
  });
}

t.test('mutations of valid bodies', async (t) => {
  let accepted = 0;
  let rejected = 0;
  let mismatches = 0;
  for (let iter = 0; iter < 2000; iter++) {
    const body = mutate(bytes(SEEDS[iter % SEEDS.length]!));
    const jsOut = outcome(js.parseInstances, body);
    if (native) {
      const nativeOut = outcome(native.parseInstances, body);
      if (nativeOut !== jsOut) {
        mismatches++;
        t.equal(nativeOut, jsOut, `native and JS agree on ${JSON.stringify(Buffer.from(body).toString('latin1'))}`);
      }
    }
    if (jsOut.startsWith('ERR')) {
      rejected++;
      if (!/^ERR Error E_INVALID_ARGUMENT @\d+ /.test(jsOut)) t.fail(`odd error: ${jsOut}`);
      continue;
    }
    accepted++;
    if (!jsonParses(body)) t.fail(`accepted what JSON.parse rejects: ${Buffer.from(body).toString('latin1')}`);
    checkAgainstJsonParse(t, body, js.parseInstances(body), `js ${iter}`);
    if (native) checkAgainstJsonParse(t, body, native.parseInstances(body), `native ${iter}`);
  }
  t.equal(mismatches, 0, 'no native/JS disagreement');
  t.ok(accepted > 300 && rejected > 500, `both outcomes exercised (accepted ${accepted}, rejected ${rejected})`);
});

t.test('random bytes and random JSON-ish token soup', async (t) => {
  let mismatches = 0;
  for (let iter = 0; iter < 1000; iter++) {
    const len = int(200);
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i++) b[i] = iter % 2 ? int(256) : ALPHABET[int(ALPHABET.length)]!;
    if (iter % 4 === 1) b.set(bytes('{"instances":[{"a":').subarray(0, len));
    const jsOut = outcome(js.parseInstances, b);
    if (native && outcome(native.parseInstances, b) !== jsOut) mismatches++;
  }
  t.equal(mismatches, 0, 'no native/JS disagreement');
});

t.test('numbers: random decimal texts parse exactly like JSON.parse', async (t) => {
  const texts: string[] = [];
  while (texts.length < 3000) {
    const digits = (n: number) => Array.from({ length: n }, () => int(10)).join('');
    const short = texts.length % 2 === 0; // half short (the exact fast path), half long
    const width = short ? 8 : 25;
    let s = (rand() < 0.5 ? '-' : '') + (rand() < 0.2 ? '0' : String(1 + int(9)) + digits(int(width)));
    if (rand() < 0.6) s += '.' + digits(1 + int(width));
    if (rand() < 0.5) s += (rand() < 0.5 ? 'e' : 'E') + ['', '+', '-'][int(3)] + String(int(rand() < 0.9 ? 40 : 330));
    if (Number.isFinite(Number(s))) texts.push(s); // overflow is rejected on purpose (tested in parse.test.ts)
  }
  const body = bytes(`{"instances":[{"x":[${texts.join(',')}]}]}`);
  const want = JSON.parse(`[${texts.join(',')}]`) as number[];
  for (const [which, parse] of native ? ([['native', native.parseInstances], ['js', js.parseInstances]] as const) : ([['js', js.parseInstances]] as const)) {
    const r = parse(body);
    t.equal(r.instances[0]!['x']!.kind, 'numbers');
    const got = (r.instances[0]!['x'] as { data: Float64Array }).data;
    let bad = 0;
    want.forEach((w, i) => {
      if (!Object.is(got[i], w)) bad++;
    });
    t.equal(bad, 0, `${which}: every number equals JSON.parse's`);
  }
});

// json_parse.cc converts a number with one exact multiplication or division when its digits
// form a significand w <= 2^53 and its power of ten e has |e| <= 22 (Clinger's fast path),
// and with from_chars otherwise. Both sides of each limit, in a list and alone.
t.test('numbers: both sides of the exact fast path (2^53, 10^22, 19 digits) equal Number(text)', async (t) => {
  const edges = [
    // significands around 2^53 = 9007199254740992
    '9007199254740991', '9007199254740992', '9007199254740993', '9007199254740994', '9007199254740995',
    '-9007199254740993', '900719925474099.2', '900719925474099.3', '90071992547409.93e2', '9007199254740992e22',
    '9007199254740993e22', '9007199254740992e-22', '9007199254740993e-22',
    // powers of ten around 22
    '1e22', '1e23', '1e-22', '1e-23', '9e22', '9e23', '9.5e-22', '4.35e-23', '123456789e14', '123456789e15',
    '1234567890123456e7', '0.1e23', '10e21', '100e-24',
    // 17 to 20 significant digits (the exact accumulation stops after 19)
    '1.0000000000000002', '0.30000000000000004', '12345678901234567', '1234567890123456789', '12345678901234567890',
    '0.1234567890123456789', '9999999999999999999', '18446744073709551615', '18446744073709551616',
    '1.8446744073709551616e19', '0.00000000000000000001234',
    // everyday numbers
    '0.1', '0.2', '0.3', '-0.1', '1e-7', '-1e-7', '1.5e-7', '0.000001', '3.141592653589793', '2.718281828459045e0',
    '-0.12345678', '0.075910315', '-0.0015968527', '16777217', '0.0', '-0.0', '0e22', '-0e-23', '0e-400', '1E+2',
    // subnormals and the ends of the range (from_chars)
    '5e-324', '4.9e-324', '2.4703282292062328e-324', '2.2250738585072011e-308', '2.2250738585072014e-308', '1e-320',
    '-1e-310', '1.7976931348623157e308',
  ];
  // Random texts on both sides: 1-19 digits with a '.' anywhere or none, exponents -30..30.
  let exact = 0;
  const random: string[] = [];
  while (random.length < 4000) {
    const digits = 1 + int(19);
    let w = String(1 + int(9));
    for (let j = 1; j < digits; j++) w += String(int(10));
    const point = int(digits + 1); // digits: no '.'
    const e = rand() < 0.5 ? int(61) - 30 : 0;
    random.push(`${rand() < 0.5 ? '-' : ''}${point < digits ? `${w.slice(0, point) || '0'}.${w.slice(point)}` : w}${e !== 0 ? `e${e}` : ''}`);
    const power = e - (point < digits ? digits - point : 0);
    if (BigInt(w) <= 2n ** 53n && Math.abs(power) <= 22) exact++;
  }
  t.ok(exact > 1000 && random.length - exact > 1000, `both sides taken (${exact} of ${random.length} in reach of the exact path)`);
  const texts = [...edges, ...random];
  for (const [which, parse] of native ? ([['native', native.parseInstances], ['js', js.parseInstances]] as const) : ([['js', js.parseInstances]] as const)) {
    const got = (parse(bytes(`{"instances":[{"x":[${texts.join(',')}]}]}`)).instances[0]!['x'] as { data: Float64Array }).data;
    const bad = texts.filter((text, i) => !Object.is(got[i], Number(text)));
    t.same(bad, [], `${which}: every number in a list equals Number(text)`);
    const badAlone = edges.filter((text) => !Object.is((parse(bytes(`{"instances":{"x":${text}}}`)).instances[0]!['x'] as { data: Float64Array }).data[0], Number(text)));
    t.same(badAlone, [], `${which}: every edge alone equals Number(text)`);
  }
});
