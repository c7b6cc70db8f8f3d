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

/** Checks a writer's shape against the element count (same rules as json_write.cc CheckJsonShape). */
export function checkJsonShape(shape: readonly number[], count: number): void {
  if (!Array.isArray(shape)) throw codecError('shape must be an array of numbers', undefined, TypeError);
  if (shape.length > MAX_JSON_RANK) throw codecError(`shape has more than ${MAX_JSON_RANK} dimensions`);
  let elements = 1;
  let lists = 0;
  for (let k = 0; k < shape.length; k++) {
    const d = shape[k];
    if (typeof d !== 'number' || !(d >= 0 && d <= Number.MAX_SAFE_INTEGER) || Math.floor(d) !== d) {
      throw codecError(`shape dimension ${k} is not a non-negative integer`);
    }
    lists += elements;
    elements *= d;
  }
  if (elements !== count) throw codecError(`shape does not match the data length ${count}`);
  if (2 * lists + elements > MAX_JSON_OUTPUT) throw codecError('JSON output too large');
}
