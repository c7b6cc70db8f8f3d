/**
 * The one typed boundary to the native addon (native/src/*.cc, built by cmake-js into
 * native/build/Release/actorserve_native.node during `npm install`).
 *
 * Every function here has a plain-JS twin with the same contract, results and error texts
 * (native/js-codec.ts, native/js-float16.ts), exported under `js`. When the addon is missing,
 * fails to load, lacks a function, or ACTORSERVE_NO_NATIVE=1 is set, the top-level exports
 * are the JS twins and `nativeLoaded` is false (`nativeLoadError` says why).
 *
 * Errors: plain Errors (TypeError/RangeError for wrong argument types/lengths) with
 * `code: 'E_INVALID_ARGUMENT'`; parse errors also carry `position` (byte offset) and name
 * it in the message. engine/errors.ts `toServingError` keeps that code.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkJsonInto, checkJsonShape, codecError, conversionTarget } from './checks.js';
import * as jsCodec from './js-codec.js';
import * as jsFloat16 from './js-float16.js';
import type { CodecFunctions, IntArray, JsonWritable, ParsedInstance, ParsedRequest, ParsedValue } from './types.js';
import { findPackageRoot } from '../engine/package-root.js';

export type {
  CodecError,
  CodecFunctions,
  IntArray,
  JsonWritable,
  ParsedB64,
  ParsedBools,
  ParsedInstance,
  ParsedNumbers,
  ParsedRequest,
  ParsedStrings,
  ParsedValue,
} from './types.js';
export { MAX_JSON_OUTPUT, MAX_JSON_RANK, jsonTextBound } from './checks.js';
export { MAX_JSON_DEPTH } from './js-codec.js';

/** The raw addon exports (arguments already checked by the wrappers below). */
interface NativeAddon {
  float16ToFloat32(src: Uint16Array, dst: Float32Array): void;
  float32ToFloat16(src: Float32Array, dst: Uint16Array): void;
  parseInstances(body: Uint8Array): ParseTape;
  writeJson(data: ArrayBufferView, shape: readonly number[], asBool?: boolean): string;
  /** The end offset, or -1 when the text did not fit. */
  writeJsonInto(data: ArrayBufferView, shape: readonly number[], asBool: boolean, target: Uint8Array, offset: number): number;
  /** An ArrayBuffer, recycled (contents NOT initialised) when >= 256 KiB: overwrite it all. */
  allocPooled(bytes: number): ArrayBuffer;
}

/** What the addon's parseInstances returns; see json_codec.cc for the layout. */
type ParseTape = [meta: ArrayBuffer, blob: string, buffers: ArrayBuffer[]];

/**
 * Builds the ParsedRequest objects from the addon's tape (the same shapes, key orders and
 * null-prototype records as the JS twin builds).
 */
function fromTape([metaBuffer, blob, buffers]: ParseTape): ParsedRequest {
  const meta = new Float64Array(metaBuffer);
  let m = 0;
  let at = 0; // position in blob
  const shared = buffers[0]!; // the small numeric values, one after another
  let b = 1; // next buffer of its own
  const text = (): string => {
    const len = meta[m++]!;
    const s = blob.slice(at, at + len);
    at += len;
    return s;
  };
  const shape = (): number[] => {
    const rank = meta[m++]!;
    const dims = new Array<number>(rank);
    for (let k = 0; k < rank; k++) dims[k] = meta[m++]!;
    return dims;
  };
  const single = meta[m++] === 1;
  const instanceCount = meta[m++]!;
  const instances = new Array<ParsedInstance>(instanceCount);
  for (let k = 0; k < instanceCount; k++) {
    const rec = Object.create(null) as ParsedInstance;
    const inputs = meta[m++]!;
    for (let j = 0; j < inputs; j++) {
      const name = text();
      const kind = meta[m++];
      let value: ParsedValue;
      if (kind === 0) {
        const dims = shape();
        const integers = meta[m++] === 1;
        const at = meta[m++]!;
        const data = at < 0 ? new Float64Array(buffers[b++]!) : new Float64Array(shared, at * 8, dims.reduce((a, d) => a * d, 1));
        value = { kind: 'numbers', shape: dims, data, integers };
      } else if (kind === 1) {
        value = { kind: 'bools', shape: shape(), data: new Uint8Array(buffers[b++]!) };
      } else if (kind === 2) {
        const dims = shape();
        const count = meta[m++]!;
        const data = new Array<string>(count);
        for (let i = 0; i < count; i++) data[i] = text();
        value = { kind: 'strings', shape: dims, data };
      } else {
        const b64 = text();
        const hasType = meta[m++] === 1;
        const type = hasType ? text() : (m++, undefined);
        const hasShape = meta[m++] === 1;
        const dims = shape();
        const v: { kind: 'b64'; b64: string; type?: string; shape?: number[] } = { kind: 'b64', b64 };
        if (type !== undefined) v.type = type;
        if (hasShape) v.shape = dims;
        value = v;
      }
      rec[name] = value;
    }
    instances[k] = rec;
  }
  return { instances, single };
}

const ADDON_PATH = ['native', 'build', 'Release', 'actorserve_native.node'];

/** Bodies shorter than this many bytes are parsed by the JS twin (measured crossover ~130-180 B). */
export const SMALL_BODY = 128;

function loadAddon(): { addon?: NativeAddon; error?: string } {
  if (process.env['ACTORSERVE_NO_NATIVE'] === '1') return { error: 'disabled by ACTORSERVE_NO_NATIVE=1' };
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  if (root === undefined) return { error: 'package.json not found above ' + fileURLToPath(import.meta.url) };
  const file = join(root, ...ADDON_PATH);
  if (!existsSync(file)) return { error: `${file} is missing (run \`npm install\` or \`npx cmake-js compile --out native/build\`)` };
  try {
    const addon = createRequire(import.meta.url)(file) as Partial<NativeAddon>;
    for (const name of ['float16ToFloat32', 'float32ToFloat16', 'parseInstances', 'writeJson', 'writeJsonInto', 'allocPooled'] as const) {
      if (typeof addon[name] !== 'function') return { error: `${file} has no ${name}() (stale build? rebuild it)` };
    }
    return { addon: addon as NativeAddon };
  } catch (e) {
    return { error: `${file} failed to load: ${e instanceof Error ? e.message : String(e)}` };
  }
}

const loaded = loadAddon();
const addon = loaded.addon;

/** True when the addon loaded; the top-level functions then run natively. */
export const nativeLoaded: boolean = addon !== undefined;
/** Why the JS fallback is in use (undefined when nativeLoaded). */
export const nativeLoadError: string | undefined = loaded.error;

/** The plain-JS implementations, whatever `nativeLoaded` says (tests and benchmarks). */
export const js: CodecFunctions = {
  float16ToFloat32: jsFloat16.float16ToFloat32,
  float32ToFloat16: jsFloat16.float32ToFloat16,
  parseInstances: jsCodec.parseInstances,
  writeFloat32Json: jsCodec.writeFloat32Json,
  writeFloat64Json: jsCodec.writeFloat64Json,
  writeIntJson: jsCodec.writeIntJson,
  writeBoolJson: jsCodec.writeBoolJson,
  writeJsonInto: jsCodec.writeJsonInto,
};

function nativeFunctions(a: NativeAddon): CodecFunctions {
  return {
    // A missing destination comes from the addon's buffer pool (recycled memory; the
    // conversion overwrites all of it).
    float16ToFloat32(src: Uint16Array, dst?: Float32Array): Float32Array {
      const out = conversionTarget('float16ToFloat32', src, Uint16Array, dst, Float32Array, (n) => new Float32Array(a.allocPooled(n * 4)));
      a.float16ToFloat32(src, out);
      return out;
    },
    float32ToFloat16(src: Float32Array, dst?: Uint16Array): Uint16Array {
      const out = conversionTarget('float32ToFloat16', src, Float32Array, dst, Uint16Array, (n) => new Uint16Array(a.allocPooled(n * 2)));
      a.float32ToFloat16(src, out);
      return out;
    },
    parseInstances(body: Uint8Array): ParsedRequest {
      if (!(body instanceof Uint8Array)) throw codecError('parseInstances: the body must be a Uint8Array', undefined, TypeError);
      return fromTape(a.parseInstances(body));
    },
    writeFloat32Json(data: Float32Array, shape: readonly number[]): string {
      if (!(data instanceof Float32Array)) throw codecError('writeFloat32Json: data must be a Float32Array', undefined, TypeError);
      checkJsonShape(shape, data.length);
      return a.writeJson(data, shape);
    },
    writeFloat64Json(data: Float64Array, shape: readonly number[]): string {
      if (!(data instanceof Float64Array)) throw codecError('writeFloat64Json: data must be a Float64Array', undefined, TypeError);
      checkJsonShape(shape, data.length);
      return a.writeJson(data, shape);
    },
    writeIntJson(data: IntArray, shape: readonly number[]): string {
      if (!jsCodec.isIntArray(data)) throw codecError('writeIntJson: data must be an integer typed array', undefined, TypeError);
      checkJsonShape(shape, data.length);
      return a.writeJson(data, shape);
    },
    writeBoolJson(data: Uint8Array, shape: readonly number[]): string {
      if (!(data instanceof Uint8Array)) throw codecError('writeBoolJson: data must be a Uint8Array', undefined, TypeError);
      checkJsonShape(shape, data.length);
      return a.writeJson(data, shape, true);
    },
    writeJsonInto(data: JsonWritable, shape: readonly number[], target: Uint8Array, offset: number, asBool = false): number {
      checkJsonInto(data, shape, target, offset, asBool);
      return a.writeJsonInto(data, shape, asBool, target, offset);
    },
  };
}

/** The addon's functions as they are (no small-body shortcut); undefined when not loaded. */
export const native: CodecFunctions | undefined = addon ? nativeFunctions(addon) : undefined;

const impl: CodecFunctions = native
  ? {
      ...native,
      parseInstances(body: Uint8Array): ParsedRequest {
        // Below SMALL_BODY bytes the JS twin is faster (the Node-API round trip costs ~2 us);
        // the results are the same either way.
        return body instanceof Uint8Array && body.length < SMALL_BODY ? jsCodec.parseInstances(body) : native.parseInstances(body);
      },
    }
  : js;

/** float16 bits -> float32 values (exact; NaNs come out quiet); `dst` (same length) is allocated when absent. */
export const float16ToFloat32: (src: Uint16Array, dst?: Float32Array) => Float32Array = impl.float16ToFloat32;
/** float32 -> float16 bits: round to nearest even, overflow to ±Inf, NaN to a quiet NaN (sign and top payload bits kept). */
export const float32ToFloat16: (src: Float32Array, dst?: Uint16Array) => Uint16Array = impl.float32ToFloat16;
/**
 * Parses a whole REST body `{"instances": [{name: value, ...}, ...]}` or
 * `{"instances": {name: value, ...}}` into flat tensors (see native/README.md for every rule).
 */
export const parseInstances: (body: Uint8Array) => ParsedRequest = impl.parseInstances;
/** Nested JSON lists of shortest round-trip float32 text (3.2, 2.0, "NaN"). */
export const writeFloat32Json: (data: Float32Array, shape: readonly number[]) => string = impl.writeFloat32Json;
/** Nested JSON lists of shortest round-trip float64 text. */
export const writeFloat64Json: (data: Float64Array, shape: readonly number[]) => string = impl.writeFloat64Json;
/** Nested JSON lists of integers (int8..int64, uint8..uint64; 64-bit values exactly). */
export const writeIntJson: (data: IntArray, shape: readonly number[]) => string = impl.writeIntJson;
/** Nested JSON lists of true/false from 0/non-0 bytes. */
export const writeBoolJson: (data: Uint8Array, shape: readonly number[]) => string = impl.writeBoolJson;
/**
 * One of the writers above (writeBoolJson when `asBool`) into `target` from `offset` as bytes,
 * with no string made; returns the end offset, or -1 when the text did not fit. With
 * jsonTextBound(data, shape, asBool) bytes of room it always fits.
 */
export const writeJsonInto: (data: JsonWritable, shape: readonly number[], target: Uint8Array, offset: number, asBool?: boolean) => number =
  impl.writeJsonInto;
