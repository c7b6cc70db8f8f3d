// The native parser's fast path for numeric lists (json_parse.cc TakeShortInts) reads 64-byte
// windows of the body and leaves the last 64 bytes to the general code, so the other parse
// tests' short bodies hardly reach it. Here long bodies (compact and Python-style ", ") put
// every token the fast path must take or refuse at every offset of a window; native must
// agree exactly with the JS twin (value or error text and position) and, when it accepts,
// with JSON.parse. The same tests run again in a child process with
// ACTORSERVE_NATIVE_NO_SIMD=1 (the portable byte classifier instead of SSE2).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { js, native, type ParsedRequest } from '../../dist/native/index.js';
import { bytes, outcome, prng } from './helpers.js';

const rand = prng(0xfa57);
const int = (n: number) => Math.floor(rand() * n);

/** An integer text: mostly 1-3 digits, some up to 12 (the fast path takes 1-8), some negative. */
function intText(): string {
  const r = rand();
  const len = r < 0.7 ? 1 + int(3) : 1 + int(12);
  let s = len === 1 && rand() < 0.2 ? '0' : String(1 + int(9));
  for (let k = 1; k < len; k++) s += String(int(10));
  return (rand() < 0.25 ? '-' : '') + s;
}

const ints = (n: number) => Array.from({ length: n }, intText);

// Tokens the fast path meets: ones it takes, ones it must leave to the general code (which
// accepts or rejects them), around the 8-digit limit and at the ends of lists.
const TOKENS = [
  '0', '-0', '7', '-7', '12345678', '-12345678', '99999999', '123456789', '-123456789', '100000000',
  '4294967295', '9007199254740993', '00', '01', '-01', '-', '--1', '-a', '1.5', '-0.25', '1e5',
  '1E+5', '1.', '.5', '+1', '1 ', ' 1', '\n1', '1\t', '', 'true', '"1"', '[1]', 'null', '{}',
  'NaN', '-Infinity', '1]', '1}', '1,', ',1', '1 ,2', '1, 2', '1,  2', '1 , 2',
];

/** A flat list: `pad` spaces after '[', then ints with `token` in the middle, 30+ elements after it. */
function flatBody(token: string, pad: number, sep: string): string {
  const before = ints(5 + int(10));
  const after = ints(30 + int(10));
  return `{"instances":[{"x":[${' '.repeat(pad)}${[...before, token, ...after].join(sep)}]}]}`;
}

/** Rows of three (an image's pixels) with `token` inside one of them. */
function nestedBody(token: string, pad: number, sep: string): string {
  const rows = Array.from({ length: 24 }, () => ints(3));
  const row = 4 + int(6);
  rows[row]![int(3)] = token;
  if (rand() < 0.2) rows[row]!.push(intText()); // and sometimes a ragged row
  return `{"instances":[{"x":[${' '.repeat(pad)}${rows.map((r) => `[${r.join(sep)}]`).join(sep)}]}]}`;
}

function jsonParseValues(text: string): number[] | undefined {
  try {
    const doc = JSON.parse(text) as { instances: [{ x: unknown }] };
    return [doc.instances[0].x].flat(Infinity) as number[];
  } catch {
    return undefined;
  }
}

function values(r: ParsedRequest): number[] {
  const v = r.instances[0]!['x']!;
  return v.kind === 'numbers' ? Array.from(v.data) : [];
}

t.test('native is built (these tests are about its fast path)', async (t) => {
  t.ok(native, 'native.parseInstances exists');
});

t.test('tokens at every window offset, compact and ", " separators', async (t) => {
  if (!native) return;
  let mismatches = 0;
  let accepted = 0;
  let rejected = 0;
  for (const token of TOKENS) {
    for (let pad = 0; pad < 72; pad++) {
      for (const sep of [',', ', ']) {
        for (const make of [flatBody, nestedBody]) {
          const text = make(token, pad, sep);
          const body = bytes(text);
          const nativeOut = outcome(native.parseInstances, body);
          const jsOut = outcome(js.parseInstances, body);
          if (nativeOut !== jsOut) {
            if (mismatches++ < 5) t.equal(nativeOut, jsOut, `native = JS on ${JSON.stringify(text)}`);
            continue;
          }
          if (nativeOut.startsWith('ERR')) {
            rejected++;
            continue;
          }
          accepted++;
          const want = jsonParseValues(text);
          const got = values(native.parseInstances(body));
          if (want === undefined || got.length !== want.length || got.some((g, i) => !Object.is(g, want[i]))) {
            if (mismatches++ < 5) t.fail(`native values = JSON.parse's on ${JSON.stringify(text)}`);
          }
        }
      }
    }
  }
  t.equal(mismatches, 0, 'no disagreement');
  t.ok(accepted > 2000 && rejected > 2000, `both outcomes exercised (accepted ${accepted}, rejected ${rejected})`);
});

t.test('random edits of long image-like bodies', async (t) => {
  if (!native) return;
  let mismatches = 0;
  const EDITS = ['', ' ', ',', ']', '[', '-', '0', '.', 'e', '9', '\n', ', '];
  for (let iter = 0; iter < 1500; iter++) {
    const sep = iter % 3 === 0 ? ', ' : ',';
    const rows = Array.from({ length: 4 + int(6) }, () => `[${Array.from({ length: 8 }, () => `[${ints(3).join(sep)}]`).join(sep)}]`);
    const b = Array.from(`{"instances":[{"x":[${rows.join(sep)}]}]}`);
    for (let k = 1 + int(3); k > 0; k--) {
      const at = 20 + int(b.length - 20);
      b.splice(at, int(3), ...EDITS[int(EDITS.length)]!);
    }
    const text = b.join('');
    const nativeOut = outcome(native.parseInstances, bytes(text));
    if (nativeOut !== outcome(js.parseInstances, bytes(text)) && mismatches++ < 5) {
      t.equal(nativeOut, outcome(js.parseInstances, bytes(text)), `native = JS on ${JSON.stringify(text)}`);
    }
  }
  t.equal(mismatches, 0, 'no disagreement');
});

t.test('a 150k-int image body: native = JSON.parse', async (t) => {
  if (!native) return;
  const image = Array.from({ length: 224 }, () => Array.from({ length: 224 }, () => [int(256), int(256), int(256) - 128]));
  for (const text of [JSON.stringify({ instances: [{ x: image }] }), JSON.stringify({ instances: [{ x: image }] }).replaceAll(',', ', ')]) {
    const v = native.parseInstances(bytes(text)).instances[0]!['x']!;
    t.same(v.kind === 'numbers' && v.shape, [224, 224, 3]);
    const want = image.flat(2);
    t.ok(values({ instances: [{ x: v }], single: false }).every((g, i) => Object.is(g, want[i])), 'every value');
  }
});

// The portable classifier (the one used where there is no SSE2) gives the same results.
if (process.env['ACTORSERVE_NATIVE_NO_SIMD'] !== '1') {
  t.test('the same with ACTORSERVE_NATIVE_NO_SIMD=1 (child process)', async (t) => {
    const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
      env: { ...process.env, ACTORSERVE_NATIVE_NO_SIMD: '1' },
      encoding: 'utf8',
    });
    // (A failing child also exits non-zero, which makes execFileSync throw.)
    const results = out.match(/^(not )?ok \d+ - /gm) ?? [];
    t.ok(results.length >= 4, `the child ran its tests (${results.length} results)`);
    t.notMatch(out, /^\s*not ok/m, 'and none failed');
  });
}
