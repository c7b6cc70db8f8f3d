/**
 * Declared method inputs (`register.method(name, { inputs: [{ name, dtype, shape }] })`): the
 * per-instance check of a request's tensor against its declaration, and the load-time check
 * that a declaration agrees with the model input it feeds directly.
 */
import { type DType, canCast } from './dtypes.js';
import { ServingError } from './errors.js';
import type { DeclaredInput } from './method-graph.js';
import type { Tensor } from './tensor.js';

type Dims = readonly (number | string)[];

/** A dim fixed to one size: a number >= 0 (-1 and strings are dynamic). */
const isFixed = (d: number | string): d is number => typeof d === 'number' && d >= 0;

const shapeText = (dims: Dims): string => `[${dims.join(', ')}]`;

/** Whether `shape` fits `dims`: the same rank, and the same size at every fixed dim. */
export function fitsDims(shape: readonly number[], dims: Dims): boolean {
  return shape.length === dims.length && dims.every((d, i) => !isFixed(d) || d === shape[i]);
}

/**
 * Refuses (E_INVALID_DTYPE, E_INVALID_SHAPE) a tensor that does not fit its input's
 * declaration: a dtype that does not convert to the declared one (numeric dtypes convert to
 * each other, bool into numbers; strings and bytes never), or a shape that does not fit. The
 * runtime then converts the tensor to the declared dtype (native/dtype-cast.ts).
 */
export function checkDeclared(t: Tensor, declared: DeclaredInput, where: string): void {
  if (declared.dtype !== undefined && !canCast(t.dtype, declared.dtype)) {
    throw new ServingError('E_INVALID_DTYPE', `${where} takes ${declared.dtype}, got ${t.dtype}`);
  }
  if (declared.dims !== undefined && !fitsDims(t.shape, declared.dims)) {
    throw new ServingError('E_INVALID_SHAPE', `${where} takes shape ${shapeText(declared.dims)}, got ${shapeText(t.shape)}`);
  }
}

/**
 * Where a declared method input feeds a model input directly, what about them disagrees, worded
 * to follow "is declared " (undefined when they agree). `batched`: the model input's first dim
 * is the batch dim, not part of one instance. Static shapes agree when their element counts do
 * (the model accepts any shape of its per-instance size); with dynamic dims, rank and every
 * fixed dim must match.
 */
export function declarationConflict(
  declared: DeclaredInput,
  model: { readonly name: string; readonly dtype: DType; readonly dims: Dims },
  batched: boolean,
): string | undefined {
  if (declared.dtype !== undefined && declared.dtype !== model.dtype) {
    return `${declared.dtype}, but it feeds model input '${model.name}', which takes ${model.dtype}`;
  }
  if (declared.dims === undefined) return undefined;
  const instance = batched ? model.dims.slice(1) : model.dims;
  const count = (dims: Dims): number | undefined => (dims.every(isFixed) ? dims.reduce((n, d) => n * d, 1) : undefined);
  const [a, b] = [count(declared.dims), count(instance)];
  const agree =
    a !== undefined && b !== undefined
      ? a === b
      : declared.dims.length === instance.length && declared.dims.every((d, i) => !isFixed(d) || !isFixed(instance[i]!) || d === instance[i]);
  return agree
    ? undefined
    : `with shape ${shapeText(declared.dims)}, but it feeds model input '${model.name}', which takes ${shapeText(instance)} per instance`;
}
