/**
 * Types shared by the native addon boundary (native/index.ts) and its plain-JS twins
 * (native/js-codec.ts, native/js-float16.ts).
 */

/** A JSON number, or a rectangular nested list of numbers, flattened row-major. */
export interface ParsedNumbers {
  readonly kind: 'numbers';
  /** `[]` for a bare number; `[0]` for `[]`, `[2, 0]` for `[[], []]`. */
  readonly shape: number[];
  readonly data: Float64Array;
  /** Every number was written without fraction or exponent (`1`, not `1.0`/`1e0`). False for empty lists. */
  readonly integers: boolean;
}

/** `true`/`false`, or a rectangular nested list of them; data holds 0/1. */
export interface ParsedBools {
  readonly kind: 'bools';
  readonly shape: number[];
  readonly data: Uint8Array;
}

/** A JSON string, or a rectangular nested list of strings. */
export interface ParsedStrings {
  readonly kind: 'strings';
  readonly shape: number[];
  readonly data: string[];
}

/**
 * An object value `{"b64": ..., "type": ..., "shape": ...}`, structurally checked only:
 * `b64` and `type` are strings, `shape` a flat list of non-negative integer literals below
 * 2^53. Decoding, the dtype name and the shape/size rules of docs/rest.md ("b64" objects) are the
 * caller's to check.
 */
export interface ParsedB64 {
  readonly kind: 'b64';
  readonly b64: string;
  readonly type?: string;
  readonly shape?: number[];
}

export type ParsedValue = ParsedNumbers | ParsedBools | ParsedStrings | ParsedB64;

/** One instance: input name -> value. Records have a null prototype (no inherited keys). */
export type ParsedInstance = Record<string, ParsedValue>;

export interface ParsedRequest {
  /** In body order; may be empty (`"instances": []`) — the caller decides that error. */
  readonly instances: ParsedInstance[];
  /** `"instances"` was a single object rather than a list. */
  readonly single: boolean;
}

/** What parseInstances and the writers throw: a plain Error with these fields. */
export interface CodecError extends Error {
  readonly code: 'E_INVALID_ARGUMENT';
  /** Byte offset in the body (parseInstances only). */
  readonly position?: number;
}

/** Integer typed arrays writeIntJson accepts. */
export type IntArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/**
 * The functions both the addon and the JS fallback provide. Free functions (function-typed
 * properties, not methods): none uses `this`, so they are exported and passed around detached.
 */
export interface CodecFunctions {
  readonly float16ToFloat32: (src: Uint16Array, dst?: Float32Array) => Float32Array;
  readonly float32ToFloat16: (src: Float32Array, dst?: Uint16Array) => Uint16Array;
  readonly parseInstances: (body: Uint8Array) => ParsedRequest;
  readonly writeFloat32Json: (data: Float32Array, shape: readonly number[]) => string;
  readonly writeFloat64Json: (data: Float64Array, shape: readonly number[]) => string;
  readonly writeIntJson: (data: IntArray, shape: readonly number[]) => string;
  readonly writeBoolJson: (data: Uint8Array, shape: readonly number[]) => string;
  /**
   * The text of the matching write*Json (writeBoolJson when `asBool`), as bytes into `target`
   * from `offset`, without making a string; returns the end offset, or -1 when the text did not
   * fit (what was written is garbage). With jsonTextBound(data, shape, asBool) bytes of room it
   * always fits.
   */
  readonly writeJsonInto: (data: JsonWritable, shape: readonly number[], target: Uint8Array, offset: number, asBool?: boolean) => number;
}

/** What writeJsonInto writes: the typed arrays of the four writers. */
export type JsonWritable = Float32Array | Float64Array | IntArray;
