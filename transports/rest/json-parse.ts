/**
 * Step 1 of JSON request decoding, in plain JS: body bytes → ParsedRequest. Same contract as
 * the native parser's `parseInstances(body)`, which can replace this function.
 *
 * Before JSON.parse allocates anything, the body is checked to be UTF-8 and its nesting depth
 * is bounded (a cheap byte scan), so a body of 10^8 '[' costs a scan, not 10^8 arrays.
 *
 * Known limits of the JSON.parse route (the native parser does better):
 *  - integer vs float is decided by value, not by syntax: `1.0` counts as an integer.
 *  - a key repeated in one object keeps its last value (JSON.parse semantics).
 */
import { isUtf8 } from 'node:buffer';
import {
  MAX_DEPTH,
  type ParsedRequest,
  type ParsedValue,
  badRequest,
  readB64Object,
  readInstances,
  readPlainValue,
} from './parsed-value.js';

const decoder = new TextDecoder('utf-8', { ignoreBOM: false });

export function parseInstances(body: Uint8Array): ParsedRequest {
  if (body.byteLength === 0) throw badRequest('the request body is empty; send {"instances": [...]}');
  if (!isUtf8(body)) throw badRequest(`the request body is not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(body)})`);
  checkDepth(body, MAX_DEPTH);
  let doc: unknown;
  try {
    doc = JSON.parse(decoder.decode(body)); // TextDecoder drops a leading BOM
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
  }
  return readInstances<ParsedValue>(doc, (value, where) => readPlainValue(value, where, readB64Object));
}

/** Throws when lists/objects nest deeper than `max` (counting outside of strings). */
export function checkDepth(b: Uint8Array, max: number): void {
  let depth = 0;
  const n = b.length;
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c === 0x22) {
      // skip the string: find the closing quote that is not escaped
      i++;
      while (i < n) {
        const d = b[i]!;
        if (d === 0x5c) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) throw badRequest(`the JSON body nests lists/objects deeper than ${max} levels (at byte ${i})`);
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
}

/** Offset of the first byte that breaks UTF-8 (only called once the body is known bad). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let len: number;
    let min: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) === 0xc0) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xf0) === 0xe0) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xf8) === 0xf0) {
      len = 4;
      min = 0x10000;
    } else return i;
    if (i + len > b.length) return i;
    let cp = c & (0xff >> (len + 1));
    for (let k = 1; k < len; k++) {
      const d = b[i + k]!;
      if ((d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return i;
}
