/**
 * Plain-JS twin of the native REST JSON codec (native/src/json_parse.cc, json_write.cc): the
 * fallback when the addon is absent and the reference the tests compare the addon against.
 *
 * The parser is a byte-level recursive-descent parser, not JSON.parse plus a walk: JSON.parse
 * cannot report duplicate keys (it keeps the last), cannot tell `1.0` from `1` (the `integers`
 * flag), and gives no byte offsets for semantic errors. This file mirrors json_parse.cc
 * function for function — same grammar, same checks in the same order, same error texts and
 * positions — so behaviour does not depend on whether the addon loaded. Change both together.
 */
import { Buffer } from 'node:buffer';
import { checkJsonInto, checkJsonShape, codecError, MAX_JSON_OUTPUT } from './checks.js';
import type { IntArray, JsonWritable, ParsedInstance, ParsedRequest, ParsedValue } from './types.js';

export const MAX_JSON_DEPTH = 64;

const END_OF_BODY = 'invalid JSON: unexpected end of body';
const LISTED_B64 = 'a list may hold one {"b64": ...} object (a tensor with a leading dim of 1); send more as one object with a shape';
const POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];
const NAN_INF = 'invalid JSON: NaN and Infinity are not JSON numbers';
const BAD_SHAPE = "'shape' must be a list of non-negative integers";
const MAX_NAME_CHARS = 64;

const enum Leaf {
  Unknown,
  Number,
  Bool,
  String,
  Null,
}

function kindWithArticle(k: Leaf): string {
  switch (k) {
    case Leaf.Number:
      return 'a number';
    case Leaf.Bool:
      return 'a bool';
    case Leaf.String:
      return 'a string';
    case Leaf.Null:
      return 'null';
    default:
      return 'a value';
  }
}

function hex2(c: number): string {
  return '0x' + c.toString(16).toUpperCase().padStart(2, '0');
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Length of the well-formed UTF-8 sequence at p[i] (Unicode table 3-7), 0 when ill-formed. */
function utf8SequenceLength(p: Uint8Array, i: number, n: number): number {
  const c = p[i]!;
  const avail = n - i;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return avail >= 2 && (p[i + 1]! & 0xc0) === 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (avail < 3) return 0;
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    const c1 = p[i + 1]!;
    if (c1 < lo || c1 > hi || (p[i + 2]! & 0xc0) !== 0x80) return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (avail < 4) return 0;
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    const c1 = p[i + 1]!;
    if (c1 < lo || c1 > hi || (p[i + 2]! & 0xc0) !== 0x80 || (p[i + 3]! & 0xc0) !== 0x80) return 0;
    return 4;
  }
  return 0;
}

/** An input name as shown in messages: at most 64 code points, then "...". */
function displayName(name: string): string {
  let chars = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff) continue; // second half of a pair: same code point
    if (chars === MAX_NAME_CHARS) return name.slice(0, i) + '...';
    chars++;
  }
  return name;
}

/**
 * The parser's internal failure, thrown from deep in the recursion and turned into a CodecError
 * by parseInstances; not an Error, so that throwing it captures no stack trace.
 */
class ParseFailure {
  constructor(
    readonly position: number,
    readonly message: string,
  ) {}
}

interface MutableValue {
  kind: 'numbers' | 'bools' | 'strings';
  numbers: number[];
  integers: boolean;
  bools: number[];
  strings: string[];
}

class Parser {
  private i = 0;
  private depth = 0;
  private context = '';
  private readonly n: number;
  private readonly buf: Buffer;
  // State of the list value being parsed.
  private value: MutableValue | undefined;
  private leafDepth = -1;
  private leafKind = Leaf.Unknown;
  private dims: number[] = [];
  private path: number[] = [];

  constructor(private readonly p: Uint8Array) {
    this.n = p.length;
    this.buf = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  }

  // ---- errors ---------------------------------------------------------------------------
  private fail(pos: number, problem: string): never {
    const text = pos >= this.n ? END_OF_BODY : problem;
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- caught in parseInstances (see ParseFailure)
    throw new ParseFailure(pos, `${this.context}${text} (at byte ${pos})`);
  }

  private describe(pos: number): string {
    const c = this.p[pos]!;
    return c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte ${hex2(c)}`;
  }

  private failExpected(what: string): never {
    if (this.i >= this.n) this.fail(this.i, END_OF_BODY);
    this.fail(this.i, `invalid JSON: expected ${what}, got ${this.describe(this.i)}`);
  }

  private matches(pos: number, word: string): boolean {
    if (this.n - pos < word.length) return false;
    for (let k = 0; k < word.length; k++) if (this.p[pos + k] !== word.charCodeAt(k)) return false;
    return true;
  }

  private failValueStart(pos: number): never {
    if (pos < this.n && (this.matches(pos, 'NaN') || this.matches(pos, 'Infinity'))) this.fail(pos, NAN_INF);
    if (pos >= this.n) this.fail(pos, END_OF_BODY);
    this.fail(pos, `invalid JSON: unexpected ${this.describe(pos)}`);
  }

  private enter(pos: number): void {
    if (++this.depth > MAX_JSON_DEPTH) this.fail(pos, `nesting deeper than ${MAX_JSON_DEPTH} levels`);
  }

  private skipWs(): void {
    const p = this.p;
    while (this.i < this.n) {
      const c = p[this.i]!;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.i++;
    }
  }

  // ---- scalars ----------------------------------------------------------------------------
  /** At '"'. Returns the decoded text (also when only validating: keys need it anyway). */
  private parseString(): string {
    const p = this.p;
    const n = this.n;
    let out = '';
    this.i++;
    for (;;) {
      const run = this.i;
      let i = this.i;
      // Plain runs (ASCII and whole UTF-8 sequences) are decoded in one slice.
      for (;;) {
        while (i < n) {
          const c = p[i]!;
          if (c === 0x22 || c === 0x5c || c < 0x20 || c >= 0x80) break;
          i++;
        }
        if (i < n && p[i]! >= 0x80) {
          const len = utf8SequenceLength(p, i, n);
          if (len === 0) {
            this.i = i;
            this.fail(i, 'invalid UTF-8 in a string');
          }
          i += len;
          continue;
        }
        break;
      }
      if (i > run) out += this.buf.toString('utf8', run, i);
      this.i = i;
      if (i >= n) this.fail(i, END_OF_BODY);
      const c = p[i]!;
      if (c === 0x22) {
        this.i++;
        return out;
      }
      if (c === 0x5c) out += this.parseEscape();
      else this.fail(i, `invalid JSON: control character ${hex2(c)} in a string`);
    }
  }

  private hex4(pos: number): number {
    if (pos > this.n || this.n - pos < 4) return -1;
    let x = 0;
    for (let k = 0; k < 4; k++) {
      const h = hexValue(this.p[pos + k]!);
      if (h < 0) return -1;
      x = (x << 4) | h;
    }
    return x;
  }

  /** At '\\'; returns the decoded text. */
  private parseEscape(): string {
    const esc = this.i;
    this.i++;
    if (this.i >= this.n) this.fail(this.i, END_OF_BODY);
    let simple = '';
    switch (this.p[this.i]) {
      case 0x22: simple = '"'; break;
      case 0x5c: simple = '\\'; break;
      case 0x2f: simple = '/'; break;
      case 0x62: simple = '\b'; break;
      case 0x66: simple = '\f'; break;
      case 0x6e: simple = '\n'; break;
      case 0x72: simple = '\r'; break;
      case 0x74: simple = '\t'; break;
      case 0x75: break;
      default: this.fail(esc, 'invalid JSON: invalid escape sequence');
    }
    if (simple !== '') {
      this.i++;
      return simple;
    }
    const cu = this.hex4(this.i + 1);
    if (cu < 0) this.fail(esc, 'invalid JSON: invalid \\u escape');
    this.i += 5;
    let cp = cu;
    if (cu >= 0xd800 && cu <= 0xdbff) {
      if (this.i + 1 < this.n && this.p[this.i] === 0x5c && this.p[this.i + 1] === 0x75) {
        const lo = this.hex4(this.i + 2);
        if (lo < 0) this.fail(this.i, 'invalid JSON: invalid \\u escape');
        if (lo < 0xdc00 || lo > 0xdfff) this.fail(esc, 'invalid JSON: unpaired UTF-16 surrogate in a \\u escape');
        cp = 0x10000 + ((cu - 0xd800) << 10) + (lo - 0xdc00);
        this.i += 6;
      } else {
        this.fail(esc, 'invalid JSON: unpaired UTF-16 surrogate in a \\u escape');
      }
    } else if (cu >= 0xdc00 && cu <= 0xdfff) {
      this.fail(esc, 'invalid JSON: unpaired UTF-16 surrogate in a \\u escape');
    }
    return String.fromCodePoint(cp);
  }

  /** At '-' or a digit. Sets numIsInt. */
  private numIsInt = true;
  private parseNumber(): number {
    const p = this.p;
    const n = this.n;
    const start = this.i;
    let i = this.i;
    let neg = false;
    if (p[i] === 0x2d) {
      neg = true;
      i++;
      if (i < n && this.matches(i, 'Infinity')) this.fail(start, NAN_INF);
      if (i >= n || !isDigit(p[i]!)) this.fail(start, "invalid JSON: invalid number (no digits after '-')");
    }
    const intStart = i;
    // Significant digits and their count, for the exact fast path below.
    let mant = 0;
    let sig = 0;
    if (p[i] === 0x30) {
      i++;
      if (i < n && isDigit(p[i]!)) this.fail(start, 'invalid JSON: invalid number (leading zero)');
    } else {
      while (i < n && isDigit(p[i]!)) {
        if (sig < 16) mant = mant * 10 + (p[i]! - 0x30);
        sig++;
        i++;
      }
    }
    const intEnd = i;
    let integer = true;
    let fracDigits = 0;
    if (i < n && p[i] === 0x2e) {
      integer = false;
      i++;
      if (i >= n || !isDigit(p[i]!)) this.fail(start, "invalid JSON: invalid number (no digits after '.')");
      while (i < n && isDigit(p[i]!)) {
        const d = p[i]! - 0x30;
        if (sig > 0 || d !== 0) {
          if (sig < 16) mant = mant * 10 + d;
          sig++;
        }
        fracDigits++;
        i++;
      }
    }
    let exp10 = 0;
    if (i < n && (p[i] === 0x65 || p[i] === 0x45)) {
      integer = false;
      i++;
      let eneg = false;
      if (i < n && (p[i] === 0x2b || p[i] === 0x2d)) {
        eneg = p[i] === 0x2d;
        i++;
      }
      if (i >= n || !isDigit(p[i]!)) this.fail(start, 'invalid JSON: invalid number (no digits in exponent)');
      while (i < n && isDigit(p[i]!)) {
        if (exp10 < 1e9) exp10 = exp10 * 10 + (p[i]! - 0x30);
        i++;
      }
      if (eneg) exp10 = -exp10;
    }
    this.i = i;
    this.numIsInt = integer;
    if (integer && intEnd - intStart <= 15) return neg ? -mant : mant;
    // Exact operands and one rounding (Clinger's fast path): correctly rounded, as from_chars.
    const e = exp10 - fracDigits;
    if (sig <= 15 && e >= -22 && e <= 22) {
      const v = e < 0 ? mant / POW10[-e]! : mant * POW10[e]!;
      return neg ? -v : v;
    }
    const v = Number(this.buf.toString('latin1', start, i));
    if (!Number.isFinite(v)) this.fail(start, 'invalid JSON: number out of range');
    return v;
  }

  /** At 't', 'f' or 'n'. */
  private parseLiteral(word: string): void {
    if (!this.matches(this.i, word)) this.fail(this.i, 'invalid JSON: invalid literal');
    this.i += word.length;
  }

  // ---- generic (ignored) values -------------------------------------------------------------
  private skipValue(): void {
    this.skipWs();
    if (this.i >= this.n) this.fail(this.i, END_OF_BODY);
    const c = this.p[this.i]!;
    if (c === 0x7b) {
      this.enter(this.i);
      this.i++;
      const keys = new Set<string>();
      this.skipWs();
      if (this.i < this.n && this.p[this.i] === 0x7d) {
        this.i++;
        this.depth--;
        return;
      }
      for (;;) {
        this.skipWs();
        this.parseKey(keys, false);
        this.skipValue();
        this.skipWs();
        if (this.i < this.n && this.p[this.i] === 0x2c) {
          this.i++;
          continue;
        }
        if (this.i < this.n && this.p[this.i] === 0x7d) {
          this.i++;
          this.depth--;
          return;
        }
        this.failExpected("',' or '}' after an object member");
      }
    }
    if (c === 0x5b) {
      this.enter(this.i);
      this.i++;
      this.skipWs();
      if (this.i < this.n && this.p[this.i] === 0x5d) {
        this.i++;
        this.depth--;
        return;
      }
      for (;;) {
        this.skipValue();
        this.skipWs();
        if (this.i < this.n && this.p[this.i] === 0x2c) {
          this.i++;
          continue;
        }
        if (this.i < this.n && this.p[this.i] === 0x5d) {
          this.i++;
          this.depth--;
          return;
        }
        this.failExpected("',' or ']' after a list element");
      }
    }
    if (c === 0x22) {
      this.parseString();
      return;
    }
    if (c === 0x74) return this.parseLiteral('true');
    if (c === 0x66) return this.parseLiteral('false');
    if (c === 0x6e) return this.parseLiteral('null');
    if (c === 0x2d || isDigit(c)) {
      this.parseNumber();
      return;
    }
    this.failValueStart(this.i);
  }

  /** At a key: the string, the __proto__/allowed/duplicate checks, the ':' and whitespace after it. */
  private parseKey(keys: Set<string>, b64Object: boolean): string {
    if (this.i >= this.n || this.p[this.i] !== 0x22) this.failExpected('a string key');
    const keyPos = this.i;
    const key = this.parseString();
    if (key === '__proto__') this.fail(keyPos, "key '__proto__' is not allowed");
    if (b64Object && key !== 'b64' && key !== 'type' && key !== 'shape') {
      this.fail(keyPos, `unexpected key '${displayName(key)}' in a {"b64": ...} object (allowed: b64, type, shape)`);
    }
    if (keys.has(key)) this.fail(keyPos, `duplicate key '${displayName(key)}'`);
    keys.add(key);
    this.skipWs();
    if (this.i >= this.n || this.p[this.i] !== 0x3a) this.failExpected("':' after a key");
    this.i++;
    this.skipWs();
    return key;
  }

  // ---- body and instances ---------------------------------------------------------------------
  parseBody(): ParsedRequest {
    const out: { instances: ParsedInstance[]; single: boolean } = { instances: [], single: false };
    this.skipWs();
    if (this.i >= this.n || this.p[this.i] !== 0x7b) this.fail(this.i, "the body must be a JSON object with an 'instances' key");
    const objPos = this.i;
    this.enter(objPos);
    this.i++;
    let haveInstances = false;
    const keys = new Set<string>();
    this.skipWs();
    if (this.i < this.n && this.p[this.i] === 0x7d) {
      this.i++;
    } else {
      for (;;) {
        this.skipWs();
        const key = this.parseKey(keys, false);
        if (key === 'instances') {
          haveInstances = true;
          this.parseInstances(out);
        } else {
          this.skipValue();
        }
        this.skipWs();
        if (this.i < this.n && this.p[this.i] === 0x2c) {
          this.i++;
          continue;
        }
        if (this.i < this.n && this.p[this.i] === 0x7d) {
          this.i++;
          break;
        }
        this.failExpected("',' or '}' after an object member");
      }
    }
    this.depth--;
    this.skipWs();
    if (this.i < this.n) this.fail(this.i, 'invalid JSON: unexpected data after the top-level value');
    if (!haveInstances) this.fail(objPos, "the body has no 'instances' key");
    return out;
  }

  private parseInstances(out: { instances: ParsedInstance[]; single: boolean }): void {
    if (this.i < this.n && this.p[this.i] === 0x7b) {
      out.single = true;
      out.instances.push(this.parseInstance(0));
      return;
    }
    if (this.i >= this.n || this.p[this.i] !== 0x5b) this.fail(this.i, "'instances' must be a list of objects or an object");
    this.enter(this.i);
    this.i++;
    out.single = false;
    this.skipWs();
    if (this.i < this.n && this.p[this.i] === 0x5d) {
      this.i++;
      this.depth--;
      return;
    }
    for (let k = 0; ; k++) {
      this.skipWs();
      if (this.i >= this.n || this.p[this.i] !== 0x7b) this.fail(this.i, `instance ${k} must be an object`);
      out.instances.push(this.parseInstance(k));
      this.skipWs();
      if (this.i < this.n && this.p[this.i] === 0x2c) {
        this.i++;
        continue;
      }
      if (this.i < this.n && this.p[this.i] === 0x5d) {
        this.i++;
        this.depth--;
        return;
      }
      this.failExpected("',' or ']' after a list element");
    }
  }

  /** At '{' of instance k. */
  private parseInstance(k: number): ParsedInstance {
    const rec = Object.create(null) as ParsedInstance;
    this.enter(this.i);
    this.i++;
    const keys = new Set<string>();
    this.skipWs();
    if (this.i < this.n && this.p[this.i] === 0x7d) {
      this.i++;
      this.depth--;
      return rec;
    }
    for (;;) {
      this.skipWs();
      const name = this.parseKey(keys, false);
      this.context = `instance ${k}, input '${displayName(name)}': `;
      rec[name] = this.parseInputValue();
      this.context = '';
      this.skipWs();
      if (this.i < this.n && this.p[this.i] === 0x2c) {
        this.i++;
        continue;
      }
      if (this.i < this.n && this.p[this.i] === 0x7d) {
        this.i++;
        this.depth--;
        return rec;
      }
      this.failExpected("',' or '}' after an object member");
    }
  }

  /** At the first byte of an input's value. */
  private parseInputValue(): ParsedValue {
    if (this.i >= this.n) this.fail(this.i, END_OF_BODY);
    const c = this.p[this.i]!;
    if (c === 0x5b) {
      const listed = this.parseListedB64();
      if (listed) return listed;
      this.leafDepth = -1;
      this.leafKind = Leaf.Unknown;
      this.dims = new Array<number>(MAX_JSON_DEPTH + 1).fill(-1);
      this.path = new Array<number>(MAX_JSON_DEPTH + 1).fill(0);
      const v: MutableValue = { kind: 'numbers', numbers: [], integers: true, bools: [], strings: [] };
      this.value = v;
      this.parseList(0);
      const shape = this.dims.slice(0, this.leafDepth);
      const kind = this.leafKind as Leaf; // set by parseList
      switch (kind) {
        case Leaf.Bool:
          return { kind: 'bools', shape, data: Uint8Array.from(v.bools) };
        case Leaf.String:
          return { kind: 'strings', shape, data: v.strings };
        case Leaf.Number:
          return { kind: 'numbers', shape, data: new Float64Array(v.numbers), integers: v.integers };
        default: // only empty lists: a zero-sized float tensor
          return { kind: 'numbers', shape, data: new Float64Array(0), integers: false };
      }
    }
    if (c === 0x7b) return this.parseB64Object();
    if (c === 0x22) return { kind: 'strings', shape: [], data: [this.parseString()] };
    if (c === 0x74 || c === 0x66) {
      const data = Uint8Array.of(c === 0x74 ? 1 : 0);
      this.parseLiteral(c === 0x74 ? 'true' : 'false');
      return { kind: 'bools', shape: [], data };
    }
    if (c === 0x6e) this.fail(this.i, 'null is not supported');
    if (c === 0x2d || isDigit(c)) {
      const d = this.parseNumber();
      return { kind: 'numbers', shape: [], data: Float64Array.of(d), integers: this.numIsInt };
    }
    this.failValueStart(this.i);
  }

  private pathText(len: number): string {
    return `[${this.path.slice(0, len).join(',')}]`;
  }

  /** At '[' of a list at `level` (0 = the input's value itself). */
  private parseList(level: number): void {
    const listPos = this.i;
    if (this.leafDepth >= 0 && level >= this.leafDepth) {
      this.fail(listPos, `ragged list at ${this.pathText(level)}: expected a scalar, got a list`);
    }
    this.enter(listPos);
    this.i++;
    let count = 0;
    this.skipWs();
    if (this.i < this.n && this.p[this.i] === 0x5d) {
      this.i++;
    } else {
      for (;;) {
        this.skipWs();
        this.path[level] = count;
        this.parseElement(level + 1);
        count++;
        this.skipWs();
        if (this.i < this.n && this.p[this.i] === 0x2c) {
          this.i++;
          continue;
        }
        if (this.i < this.n && this.p[this.i] === 0x5d) {
          this.i++;
          break;
        }
        this.failExpected("',' or ']' after a list element");
      }
    }
    this.depth--;
    const want = this.dims[level]!;
    if (want < 0) {
      this.dims[level] = count;
      if (count === 0 && this.leafDepth < 0) this.leafDepth = level + 1;
    } else if (count !== want) {
      this.fail(listPos, `ragged list at ${this.pathText(level)}: expected ${want} elements, got ${count}`);
    }
  }

  /** At an element of a list; `level` is the element's own depth. */
  private parseElement(level: number): void {
    const pos = this.i;
    if (this.i >= this.n) this.fail(this.i, END_OF_BODY);
    const c = this.p[this.i]!;
    if (c === 0x5b) return this.parseList(level);
    if (c === 0x7b) this.fail(pos, `objects are not supported inside lists at ${this.pathText(level)}`);
    let kind: Leaf;
    if (c === 0x22) kind = Leaf.String;
    else if (c === 0x74 || c === 0x66) kind = Leaf.Bool;
    else if (c === 0x6e) kind = Leaf.Null;
    else if (c === 0x2d || isDigit(c)) kind = Leaf.Number;
    else this.failValueStart(pos);
    if (this.leafDepth < 0) {
      this.leafDepth = level;
    } else if (level < this.leafDepth) {
      const want = this.dims[level]!;
      this.fail(
        pos,
        `ragged list at ${this.pathText(level)}: expected a list${want >= 0 ? ` of ${want} elements` : ''}, got ${kindWithArticle(kind)}`,
      );
    }
    if (kind === Leaf.Null) this.fail(pos, `null is not supported at ${this.pathText(level)}`);
    if (this.leafKind === Leaf.Unknown) {
      this.leafKind = kind;
    } else if (kind !== this.leafKind) {
      this.fail(
        pos,
        `mixed element kinds at ${this.pathText(level)}: expected ${kindWithArticle(this.leafKind)}, got ${kindWithArticle(kind)}`,
      );
    }
    const v = this.value!;
    if (kind === Leaf.String) {
      v.strings.push(this.parseString());
    } else if (kind === Leaf.Bool) {
      v.bools.push(c === 0x74 ? 1 : 0);
      this.parseLiteral(c === 0x74 ? 'true' : 'false');
    } else {
      v.numbers.push(this.parseNumber());
      if (!this.numIsInt) v.integers = false;
    }
  }

  /**
   * At '[' of an input's value. `[{"b64": ...}]` (MindSpore's form of a bytes tensor of shape
   * [1]) is the object with a leading dim of 1 added to its shape. Returns undefined, having
   * consumed nothing, when the list does not start with an object.
   */
  private parseListedB64(): ParsedValue | undefined {
    const listPos = this.i;
    this.i++;
    this.skipWs();
    if (this.i >= this.n || this.p[this.i] !== 0x7b) {
      this.i = listPos;
      return undefined;
    }
    this.enter(listPos);
    const v = this.parseB64Object() as { kind: 'b64'; b64: string; type?: string; shape?: number[] };
    this.skipWs();
    if (this.i < this.n && this.p[this.i] === 0x2c) this.fail(this.i, LISTED_B64);
    if (this.i >= this.n || this.p[this.i] !== 0x5d) this.failExpected("']' after a list element");
    this.i++;
    this.depth--;
    v.shape = [1, ...(v.shape ?? [])];
    return v;
  }

  /** At '{' of an input's value: {"b64": "...", "type": "...", "shape": [...]}. */
  private parseB64Object(): ParsedValue {
    const objPos = this.i;
    this.enter(objPos);
    this.i++;
    let b64: string | undefined;
    let type: string | undefined;
    let shape: number[] | undefined;
    const keys = new Set<string>();
    this.skipWs();
    if (this.i < this.n && this.p[this.i] === 0x7d) {
      this.i++;
    } else {
      for (;;) {
        this.skipWs();
        const key = this.parseKey(keys, true);
        if (key === 'b64') {
          if (this.i >= this.n || this.p[this.i] !== 0x22) this.fail(this.i, "'b64' must be a string");
          b64 = this.parseString();
        } else if (key === 'type') {
          if (this.i >= this.n || this.p[this.i] !== 0x22) this.fail(this.i, "'type' must be a string");
          type = this.parseString();
        } else {
          shape = this.parseShape();
        }
        this.skipWs();
        if (this.i < this.n && this.p[this.i] === 0x2c) {
          this.i++;
          continue;
        }
        if (this.i < this.n && this.p[this.i] === 0x7d) {
          this.i++;
          break;
        }
        this.failExpected("',' or '}' after an object member");
      }
    }
    this.depth--;
    if (b64 === undefined) this.fail(objPos, `'b64' is missing in a {"b64": ...} object`);
    const out: { kind: 'b64'; b64: string; type?: string; shape?: number[] } = { kind: 'b64', b64 };
    if (type !== undefined) out.type = type;
    if (shape !== undefined) out.shape = shape;
    return out;
  }

  /** The value of "shape": a flat list of non-negative integer literals below 2^53. */
  private parseShape(): number[] {
    const shape: number[] = [];
    if (this.i >= this.n || this.p[this.i] !== 0x5b) this.fail(this.i, BAD_SHAPE);
    this.enter(this.i);
    this.i++;
    this.skipWs();
    if (this.i < this.n && this.p[this.i] === 0x5d) {
      this.i++;
      this.depth--;
      return shape;
    }
    for (;;) {
      this.skipWs();
      const pos = this.i;
      if (this.i >= this.n || !isDigit(this.p[this.i]!)) this.fail(pos, BAD_SHAPE);
      const d = this.parseNumber();
      if (!this.numIsInt || d > Number.MAX_SAFE_INTEGER) this.fail(pos, BAD_SHAPE);
      shape.push(d);
      this.skipWs();
      if (this.i < this.n && this.p[this.i] === 0x2c) {
        this.i++;
        continue;
      }
      if (this.i < this.n && this.p[this.i] === 0x5d) {
        this.i++;
        this.depth--;
        return shape;
      }
      this.failExpected("',' or ']' after a list element");
    }
  }
}

/** Parses a REST body `{"instances": ...}`; see native/README.md for the full contract. */
export function parseInstances(body: Uint8Array): ParsedRequest {
  if (!(body instanceof Uint8Array)) throw codecError('parseInstances: the body must be a Uint8Array', undefined, TypeError);
  try {
    return new Parser(body).parseBody();
  } catch (e) {
    if (e instanceof ParseFailure) throw codecError(e.message, e.position);
    throw e;
  }
}

// ---- writers ----------------------------------------------------------------------------------

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * Shortest float32 text, laid out like json_write.cc (see native/README.md). Same digits as
 * std::to_chars (Ryu): the fewest significant digits that read back as the same float32; of
 * those, the one nearest the value; an exact tie goes to the even last digit.
 */
export function float32Text(x: number): string {
  if (x !== x) return '"NaN"';
  if (x === Infinity) return '"Infinity"';
  if (x === -Infinity) return '"-Infinity"';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const ax = Math.abs(x);
  f32Scratch[0] = ax;
  const bits = u32Scratch[0]!;
  // A power of two (not the smallest normal): the float below is twice as near as the float
  // above, so the round-trip interval is lopsided and the nearest p-digit decimal (below)
  // can fall outside it while the next one up is inside.
  const lopsided = (bits & 0x7fffff) === 0 && bits >>> 23 > 1;
  // "Some p-digit decimal reads back as x" only gets truer as p grows, so search for the
  // least such p; most float32 values need 8 or 9 digits, so probe 8 and 7 first.
  let best = shortestCandidate(ax, 8, lopsided);
  let p = 8;
  if (best === '') {
    best = ax.toPrecision(9); // 9 digits always read back
    p = 9;
  } else {
    const seven = shortestCandidate(ax, 7, lopsided);
    if (seven !== '') {
      let lo = 1;
      let hi = 7;
      best = seven;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const c = shortestCandidate(ax, mid, lopsided);
        if (c === '') {
          lo = mid + 1;
        } else {
          hi = mid;
          best = c;
        }
      }
      p = hi;
    }
  }
  return (x < 0 ? '-' : '') + withPoint(String(+tieToEven(ax, p, best)));
}

/** A p-digit decimal that reads back as the float32 ax (the nearest such), or ''. */
function shortestCandidate(ax: number, p: number, lopsided: boolean): string {
  const s = ax.toPrecision(p); // the nearest p-digit decimal, exact ties rounded up
  if (Math.fround(+s) === ax) return s;
  if (lopsided && +s < ax) {
    const up = stepDecimal(s, p, 1);
    if (Math.fround(+up) === ax) return up;
  }
  return '';
}

/** The p-digit decimal one unit in the last place away from s (dir = +1 up, -1 down). */
function stepDecimal(s: string, p: number, dir: 1 | -1): string {
  const v = +s;
  const exp = +v.toExponential(p - 1).split('e')[1]!;
  const unit = +`1e${exp - p + 1}`;
  return (v + dir * unit).toPrecision(p);
}

/** s = toPrecision(p) of ax, which rounds exact ties up; Ryu rounds them to the even digit. */
function tieToEven(ax: number, p: number, s: string): string {
  // A tie means ax is exactly a (p+1)-digit decimal ending in 5: at most 10 significant
  // digits, so at most 14 binary fraction digits (5^15 has 11 decimal digits).
  if (!Number.isInteger(ax * 16384)) return s;
  const t = ax.toPrecision(p + 1);
  const mantissa = t.split('e')[0]!;
  if (mantissa.charCodeAt(mantissa.length - 1) !== 0x35 || +t !== ax || !exactlyEqual(ax, t)) return s;
  const digits = s.split('e')[0]!;
  if ((digits.charCodeAt(digits.length - 1) - 0x30) % 2 === 0) return s;
  const down = stepDecimal(s, p, -1);
  return Math.fround(+down) === ax ? down : s;
}

/** Whether the float32 ax (> 0) is exactly the decimal text t (BigInt; only on rare ties). */
function exactlyEqual(ax: number, t: string): boolean {
  f32Scratch[0] = ax;
  const bits = u32Scratch[0]!;
  const expField = bits >>> 23;
  let m = BigInt(bits & 0x7fffff);
  const e2 = expField === 0 ? -149 : expField - 150;
  if (expField !== 0) m += 1n << 23n;
  const [mant, e] = t.split('e') as [string, string | undefined];
  const dot = mant.indexOf('.');
  const digits = BigInt(mant.replace('.', ''));
  const e10 = (e === undefined ? 0 : +e) - (dot < 0 ? 0 : mant.length - dot - 1);
  let lhs = m;
  let rhs = digits;
  if (e2 >= 0) lhs <<= BigInt(e2);
  else rhs <<= BigInt(-e2);
  if (e10 >= 0) rhs *= 10n ** BigInt(e10);
  else lhs *= 10n ** BigInt(-e10);
  return lhs === rhs;
}

/** Shortest float64 text, laid out like json_write.cc. */
export function float64Text(x: number): string {
  if (x !== x) return '"NaN"';
  if (x === Infinity) return '"Infinity"';
  if (x === -Infinity) return '"-Infinity"';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  return withPoint(String(x));
}

function withPoint(s: string): string {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c === 0x2e || c === 0x65) return s; // '.' or 'e'
  }
  return s + '.0';
}

function writeNested(count: number, shape: readonly number[], text: (i: number) => string): string {
  checkJsonShape(shape, count);
  if (shape.length === 0) return text(0);
  let out = '';
  let index = 0;
  const rank = shape.length;
  const level = (l: number): void => {
    const d = shape[l]!;
    out += '[';
    if (l + 1 === rank) {
      for (let j = 0; j < d; j++) {
        if (j > 0) out += ',';
        out += text(index++);
      }
    } else {
      for (let j = 0; j < d; j++) {
        if (j > 0) out += ',';
        level(l + 1);
      }
    }
    out += ']';
    if (out.length > MAX_JSON_OUTPUT) throw codecError('JSON output too large');
  };
  try {
    level(0);
  } catch (e) {
    // V8 throws a RangeError ("Invalid string length") when a string passes its limit.
    if (e instanceof RangeError && !('code' in e)) throw codecError('JSON output too large');
    throw e;
  }
  return out;
}

export function writeFloat32Json(data: Float32Array, shape: readonly number[]): string {
  if (!(data instanceof Float32Array)) throw codecError('writeFloat32Json: data must be a Float32Array', undefined, TypeError);
  return writeNested(data.length, shape, (i) => float32Text(data[i]!));
}

export function writeFloat64Json(data: Float64Array, shape: readonly number[]): string {
  if (!(data instanceof Float64Array)) throw codecError('writeFloat64Json: data must be a Float64Array', undefined, TypeError);
  return writeNested(data.length, shape, (i) => float64Text(data[i]!));
}

export function isIntArray(data: unknown): data is IntArray {
  return (
    data instanceof Int8Array ||
    data instanceof Uint8Array ||
    data instanceof Uint8ClampedArray ||
    data instanceof Int16Array ||
    data instanceof Uint16Array ||
    data instanceof Int32Array ||
    data instanceof Uint32Array ||
    data instanceof BigInt64Array ||
    data instanceof BigUint64Array
  );
}

export function writeIntJson(data: IntArray, shape: readonly number[]): string {
  if (!isIntArray(data)) throw codecError('writeIntJson: data must be an integer typed array', undefined, TypeError);
  return writeNested(data.length, shape, (i) => String(data[i]!));
}

export function writeBoolJson(data: Uint8Array, shape: readonly number[]): string {
  if (!(data instanceof Uint8Array)) throw codecError('writeBoolJson: data must be a Uint8Array', undefined, TypeError);
  return writeNested(data.length, shape, (i) => (data[i] !== 0 ? 'true' : 'false'));
}

/** The JS twin of writeJsonInto: the writer's string, copied in as Latin-1 (the text is ASCII), or -1. */
export function writeJsonInto(data: JsonWritable, shape: readonly number[], target: Uint8Array, offset: number, asBool = false): number {
  checkJsonInto(data, shape, target, offset, asBool);
  const text = asBool
    ? writeBoolJson(data as Uint8Array, shape)
    : data instanceof Float32Array
      ? writeFloat32Json(data, shape)
      : data instanceof Float64Array
        ? writeFloat64Json(data, shape)
        : writeIntJson(data, shape);
  if (text.length > target.length - offset) return -1;
  return offset + Buffer.from(target.buffer, target.byteOffset, target.byteLength).write(text, offset, 'latin1');
}
