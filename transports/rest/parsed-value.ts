/**
 * Walks a plain JS value (what msgpackr decodes) into the ParsedRequest/ParsedValue shapes that
 * native/index.ts `parseInstances` returns for JSON bodies (types from native/types.ts), so
 * msgpack bodies share the JSON path's second step (`json-codec.ts` `decodeInstances`). JSON
 * bodies never come here: the native parser (or its JS twin) reads them directly from bytes.
 *
 * Also: `badRequest` and `preview`, the transport's 400 helpers.
 */
import { MAX_JSON_DEPTH, type ParsedB64, type ParsedValue } from '../../native/index.js';
import { ServingError } from '../../engine/errors.js';
import { MAX_ELEMENTS } from '../../engine/tensor.js';

/** Deepest nesting of lists and maps accepted in a msgpack body (the JSON parser's limit too). */
export const MAX_DEPTH = MAX_JSON_DEPTH;

export function badRequest(message: string): ServingError {
  return new ServingError('E_INVALID_ARGUMENT', message);
}

/** Shows at most `max` characters of untrusted text in an error message. */
export function preview(text: string, max = 40): string {
  const s = JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
  return text.length > max ? `${s} (${text.length} characters)` : s;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'binary data';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'bigint') return 'an integer';
  return `a ${typeof v}`;
}

/** Hook for map values (msgpack: tensor maps and b64 objects). */
export type ObjectValueReader<V> = (obj: Record<string, unknown>, where: string) => V;

/**
 * The top level of a msgpack body: `{"instances": {...}}` (one instance) or
 * `{"instances": [{...}, ...]}`. Other top-level keys are ignored (as MindSpore does). As with
 * the JSON parser, zero instances, an instance without inputs and an empty input name are left
 * to `decodeInstances`, which refuses them for both body kinds.
 */
export function readInstances<V>(
  doc: unknown,
  readValue: (value: unknown, where: string) => V,
): { instances: Array<Record<string, V>>; single: boolean } {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || doc instanceof Uint8Array) {
    throw badRequest(`the body must be an object with an "instances" key, got ${typeName(doc)}`);
  }
  checkKeys(doc as Record<string, unknown>, 'the body');
  if (!Object.hasOwn(doc, 'instances')) {
    throw badRequest('the body has no "instances" key: send {"instances": [{"<input>": <value>, ...}, ...]}');
  }
  const list = (doc as { instances: unknown }).instances;
  if (Array.isArray(list)) {
    return { instances: list.map((inst, i) => readInstance(inst, i, readValue)), single: false };
  }
  if (typeof list === 'object' && list !== null && !(list instanceof Uint8Array)) {
    return { instances: [readInstance(list, 0, readValue)], single: true };
  }
  throw badRequest(`"instances" must be an object (one instance) or a list of objects, got ${typeName(list)}`);
}

function readInstance<V>(inst: unknown, k: number, readValue: (value: unknown, where: string) => V): Record<string, V> {
  if (typeof inst !== 'object' || inst === null || Array.isArray(inst) || inst instanceof Uint8Array) {
    throw badRequest(`instance ${k} must be an object of named inputs, got ${typeName(inst)}`);
  }
  checkKeys(inst as Record<string, unknown>, `instance ${k}`);
  const out: Record<string, V> = {};
  for (const key of Object.keys(inst)) {
    out[key] = readValue((inst as Record<string, unknown>)[key], `instance ${k}, input '${key}'`);
  }
  return out;
}

/** Rejects keys that could reach an object's prototype when copied into another object. */
export function checkKeys(obj: Record<string, unknown>, where: string): void {
  if (Object.hasOwn(obj, '__proto__')) throw badRequest(`${where} has a "__proto__" key, which is not allowed`);
}

/** Reads one input value: a scalar, nested lists, or an object handed to `readObject`. */
export function readPlainValue<V>(value: unknown, where: string, readObject: ObjectValueReader<V>): ParsedValue | V {
  if (Array.isArray(value)) return readList(value, where);
  if (value === null || value === undefined) throw badRequest(`${where} is null; send a number, bool, string, list or {"b64": ...}`);
  if (typeof value === 'object' && !(value instanceof Uint8Array)) {
    checkKeys(value as Record<string, unknown>, where);
    return readObject(value as Record<string, unknown>, where);
  }
  return fillLeaves(leafKind(value, where, ''), where, [], [value]);
}

/**
 * A `{"b64": ..., "type": ..., "shape": ...}` map, checked as native/index.ts `parseInstances`
 * checks the JSON object (same rules and wording): keys from b64/type/shape, `b64` required,
 * `b64` and `type` strings, `shape` a flat list of non-negative integers below 2^53. The dtype
 * name, base64 and sizes are checked later (json-codec.ts), for both body kinds.
 */
export function readB64Object(obj: Record<string, unknown>, where: string): ParsedB64 {
  for (const key of Object.keys(obj)) {
    if (key !== 'b64' && key !== 'type' && key !== 'shape') {
      throw badRequest(`${where}: unexpected key ${preview(key)} in a {"b64": ...} object (allowed: b64, type, shape)`);
    }
  }
  if (!Object.hasOwn(obj, 'b64')) throw badRequest(`${where}: 'b64' is missing in a {"b64": ...} object`);
  const { b64, type, shape } = obj;
  if (typeof b64 !== 'string') throw badRequest(`${where}: 'b64' must be a string`);
  if (type !== undefined && typeof type !== 'string') throw badRequest(`${where}: 'type' must be a string`);
  const out: { kind: 'b64'; b64: string; type?: string; shape?: number[] } = { kind: 'b64', b64 };
  if (type !== undefined) out.type = type;
  if (Object.hasOwn(obj, 'shape')) {
    if (!Array.isArray(shape)) throw badRequest(`${where}: 'shape' must be a list of non-negative integers`);
    out.shape = shape.map((d: unknown) => {
      const n = typeof d === 'bigint' ? Number(d) : d;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw badRequest(`${where}: 'shape' must be a list of non-negative integers`);
      return n;
    });
  }
  return out;
}

type LeafKind = 'numbers' | 'bools' | 'strings';

/** "element [1][0]", or "the value" for a scalar. */
function at(pos: string): string {
  return pos === '' ? 'the value' : `element ${pos}`;
}

function leafKind(v: unknown, where: string, pos: string): LeafKind {
  switch (typeof v) {
    case 'number':
    case 'bigint':
      return 'numbers';
    case 'boolean':
      return 'bools';
    case 'string':
      return 'strings';
    default:
      if (Array.isArray(v)) throw badRequest(`${where}: ${at(pos)} is a list where a value was expected (lists must not be ragged)`);
      if (v === null) throw badRequest(`${where}: ${at(pos)} is null; send numbers, bools or strings`);
      throw badRequest(
        `${where}: ${at(pos)} is ${typeName(v)}; lists may hold numbers, bools or strings ({"b64": ...} objects only stand alone as an input's value)`,
      );
  }
}

/**
 * Nested lists → flat data with a shape. The shape comes from the first element at each
 * depth; every other list must match it, and every leaf must be of the first leaf's kind.
 */
function readList(list: unknown[], where: string): ParsedValue {
  const shape: number[] = [];
  let a: unknown = list;
  let count = 1;
  while (Array.isArray(a)) {
    if (shape.length >= MAX_DEPTH) throw badRequest(`${where}: lists are nested deeper than ${MAX_DEPTH} levels`);
    shape.push(a.length);
    count *= a.length;
    if (a.length === 0) break;
    a = a[0];
  }
  if (count > MAX_ELEMENTS) throw badRequest(`${where}: a list of shape [${shape.join(', ')}] holds more than 2^31-1 elements`);
  // an empty list gives a zero-sized tensor; its kind does not matter, numbers is the neutral one
  const kind: LeafKind = count === 0 ? 'numbers' : leafKind(a, where, '[0]'.repeat(shape.length));
  let leaves: unknown[];
  if (shape.length === 1) leaves = list;
  else {
    leaves = [];
    gather(list, 0, { where, shape, idx: new Array<number>(shape.length).fill(0), leaves });
  }
  return fillLeaves(kind, where, shape, leaves);
}

interface GatherState {
  readonly where: string;
  readonly shape: readonly number[];
  /** The index path being walked, for messages about ragged lists. */
  readonly idx: number[];
  readonly leaves: unknown[];
}

/** Appends the leaves of `node` (at `depth`) in row-major order, checking every list's length. */
function gather(node: unknown, depth: number, g: GatherState): void {
  const pos = (d: number): string => g.idx.slice(0, d).map((i) => `[${i}]`).join('');
  if (!Array.isArray(node)) {
    throw badRequest(`${g.where}: ${at(pos(depth))} is ${typeName(node)} but ${at('[0]'.repeat(depth))} is a list (lists must not be ragged)`);
  }
  const n = g.shape[depth]!;
  if (node.length !== n) {
    throw badRequest(
      `${g.where}: the list at ${pos(depth)} has ${node.length} elements but the one at ${'[0]'.repeat(depth)} has ${n} (lists must not be ragged)`,
    );
  }
  if (depth === g.shape.length - 1) {
    for (let i = 0; i < n; i++) g.leaves.push(node[i]);
    return;
  }
  for (let i = 0; i < n; i++) {
    g.idx[depth] = i;
    gather(node[i], depth + 1, g);
  }
}

/** "[1][0]": where the flat index `i` sits in `shape`. */
function position(i: number, shape: readonly number[]): string {
  let s = '';
  for (let d = shape.length - 1; d >= 0; d--) {
    const dim = shape[d]!;
    s = `[${i % dim}]${s}`;
    i = Math.floor(i / dim);
  }
  return s;
}

/** Typed data of `kind` from the leaves (row-major), checking each leaf's kind. */
function fillLeaves(kind: LeafKind, where: string, shape: number[], leaves: readonly unknown[]): ParsedValue {
  const n = leaves.length;
  const mixed = (expected: string, i: number): ServingError => {
    const v = leaves[i];
    const pos = position(i, shape);
    if (Array.isArray(v)) return badRequest(`${where}: ${at(pos)} is a list where ${expected} was expected (lists must not be ragged)`);
    return badRequest(`${where}: ${at(pos)} is ${typeName(v)} but ${at('[0]'.repeat(shape.length))} is ${expected} (lists must not mix kinds)`);
  };
  if (kind === 'numbers') {
    const data = new Float64Array(n);
    let integers = n > 0; // as the JSON parser: an empty list is a zero-sized float tensor
    for (let i = 0; i < n; i++) {
      const v = leaves[i];
      let x: number;
      if (typeof v === 'number') x = v;
      else if (typeof v === 'bigint') {
        x = Number(v);
        if (!Number.isSafeInteger(x)) throw badRequest(`${where}: ${at(position(i, shape))} (${v}) is beyond ±2^53; send it as binary data with a dtype`);
      } else throw mixed('a number', i);
      if (x - x !== 0) throw badRequest(`${where}: ${at(position(i, shape))} (${v}) is not a finite number (send NaN/Infinity as binary data)`);
      if (integers && !Number.isInteger(x)) integers = false;
      data[i] = x;
    }
    return { kind, shape, data, integers };
  }
  if (kind === 'bools') {
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = leaves[i];
      if (typeof v !== 'boolean') throw mixed('a bool', i);
      data[i] = v ? 1 : 0;
    }
    return { kind, shape, data };
  }
  const data = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const v = leaves[i];
    if (typeof v !== 'string') throw mixed('a string', i);
    data[i] = v;
  }
  return { kind, shape, data };
}
