/**
 * Argument checks shared by the addon wrappers (native/index.ts) and the JS twins, so that a
 * bad call fails the same way with or without the addon. Every error is a plain Error (or
 * TypeError/RangeError) with `code: 'E_INVALID_ARGUMENT'`.
 */

/** Most dimensions a shape given to a writer may have (the parser's nesting limit is 64 too). */
export const MAX_JSON_RANK = 64;
/** Longest string V8 holds on 64-bit hosts; a writer whose text would pass it throws. */
export const MAX_JSON_OUTPUT = 2 ** 29 - 24;

type ErrorClass = ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor;

export function codecError(message: string, position?: number, Class: ErrorClass = Error): Error {
  const err = new Class(message) as Error & { code: string; position?: number };
  err.code = 'E_INVALID_ARGUMENT';
  if (position !== undefined) err.position = position;
  return err;
}

/**
 * Checks (src, dst?) of a float16 conversion and returns dst, allocated when absent (by
 * `alloc`, whose memory the conversion then overwrites entirely).
 */
export function conversionTarget<S extends ArrayBufferView & { length: number }, D>(
  what: string,
  src: S,
  SrcClass: abstract new (...args: never[]) => S,
  dst: D | undefined,
  DstClass: { new (length: number): D; prototype: D },
  alloc: (length: number) => D = (length) => new DstClass(length),
): D {
  if (!(src instanceof SrcClass)) throw codecError(`${what}: the source must be a ${SrcClass.name}`, undefined, TypeError);
  if (dst === undefined) return alloc(src.length);
  if (!(dst instanceof DstClass)) {
    throw codecError(`${what}: the destination must be a ${(DstClass as unknown as { name: string }).name}`, undefined, TypeError);
  }
  if ((dst as unknown as { length: number }).length !== src.length) {
    throw codecError(`${what}: the source and destination lengths differ`, undefined, RangeError);
  }
  return dst;
}

/** Most characters of one element's JSON text, per element type (the longest texts json_write.cc writes). */
function maxElementChars(data: ArrayBufferView, asBool: boolean): number {
  if (asBool) return 5; // false
  if (data instanceof Float32Array) return 24; // -123456789012345678900.0
  if (data instanceof Float64Array) return 25; // -0.0000012345678901234567
  if (data instanceof Int8Array) return 4;
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return 3;
  if (data instanceof Int16Array) return 6;
  if (data instanceof Uint16Array) return 5;
  if (data instanceof Int32Array) return 11;
  if (data instanceof Uint32Array) return 10;
  return 20; // 64-bit integers
}

/** Room the native writer asks for beyond the text: it reserves kMaxElementChars + 2 = 34 bytes before each element (json_write.cc). */
const WRITE_SLACK = 34;

/**
 * Room after which writeJsonInto(data, shape, ...) always fits: the longest text any values of
 * this type and shape can give, plus the writer's slack. `charsPerElement` replaces the longest
 * element text by a guess (float32 outputs mostly take 12 characters or fewer with their comma).
 */
export function jsonTextBound(data: ArrayBufferView & { length: number }, shape: readonly number[], asBool = false, charsPerElement?: number): number {
  let elements = 1;
  let lists = 0;
  for (const d of shape) {
    lists += elements;
    elements *= d;
  }
  return data.length * (charsPerElement ?? maxElementChars(data, asBool) + 1) + 2 * lists + WRITE_SLACK;
}

/** Checks a writer's shape against the element count (same rules as json_write.cc CheckJsonShape). */
export function checkJsonShape(shape: readonly number[], count: number): void {
  if (!Array.isArray(shape)) throw codecError('shape must be an array of numbers', undefined, TypeError);
  if (shape.length > MAX_JSON_RANK) throw codecError(`shape has more than ${MAX_JSON_RANK} dimensions`);
  let elements = 1;
  let lists = 0;
  for (let k = 0; k < shape.length; k++) {
    const d: unknown = shape[k]; // callers may be plain JS: check the element, not its declared type
    if (typeof d !== 'number' || !(d >= 0 && d <= Number.MAX_SAFE_INTEGER) || Math.floor(d) !== d) {
      throw codecError(`shape dimension ${k} is not a non-negative integer`);
    }
    lists += elements;
    elements *= d;
  }
  if (elements !== count) throw codecError(`shape does not match the data length ${count}`);
  if (2 * lists + elements > MAX_JSON_OUTPUT) throw codecError('JSON output too large');
}

/**
 * Checks writeJsonInto's arguments: a writer's typed array (a Uint8Array when `asBool`), its
 * shape, a Uint8Array target and an integer offset within it.
 */
export function checkJsonInto(data: unknown, shape: readonly number[], target: unknown, offset: number, asBool: boolean): void {
  const typedArray = ArrayBuffer.isView(data) && !(data instanceof DataView);
  if (!typedArray || (asBool && !(data instanceof Uint8Array))) {
    throw codecError(`writeJsonInto: data must be a ${asBool ? 'Uint8Array (asBool)' : 'float or integer typed array'}`, undefined, TypeError);
  }
  if (!(target instanceof Uint8Array)) throw codecError('writeJsonInto: the target must be a Uint8Array', undefined, TypeError);
  if (!Number.isInteger(offset) || offset < 0 || offset > target.length) {
    throw codecError(`writeJsonInto: offset ${offset} is outside the target (length ${target.length})`, undefined, RangeError);
  }
  checkJsonShape(shape, (data as ArrayBufferView & { length: number }).length);
}
