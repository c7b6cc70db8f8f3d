/**
 * Whole-batch tensors ↔ a servable's instances: a batched method's [N, ...] tensor is split
 * into N instances along its leading dim (views, no copy), and the N instances' outputs are
 * stacked back along a new leading dim (one copy into a fresh array).
 */
import { type NumericArray, allocate, isNumericDType } from '../../engine/dtypes.js';
import { ServingError } from '../../engine/errors.js';
import type { Tensor } from '../../engine/tensor.js';

/** Element `j` of `t` along its leading dim: shape `t.shape.slice(1)`, data a view of `t`'s. */
export function batchElement(t: Tensor, j: number): Tensor {
  const shape = t.shape.slice(1);
  const per = t.shape[0] === 0 ? 0 : dataLength(t) / t.shape[0]!;
  if (isNumericDType(t.dtype)) {
    return { dtype: t.dtype, shape, data: (t.data as NumericArray).subarray(j * per, (j + 1) * per) } as Tensor;
  }
  return { dtype: t.dtype, shape, data: (t.data as readonly Uint8Array[]).slice(j * per, (j + 1) * per) };
}

function dataLength(t: Tensor): number {
  return (t.data as ArrayLike<unknown>).length;
}

/**
 * The instances' values of one output stacked along a new leading dim. Every part must have
 * the same dtype and shape; else E_STAGE_FAILED (500): a method whose instances return
 * different shapes has no v2 tensor form. `what` names the output in the message.
 */
export function stackBatch(parts: readonly Tensor[], what: string): Tensor {
  const first = parts[0]!;
  for (let j = 1; j < parts.length; j++) {
    const p = parts[j]!;
    if (p.dtype !== first.dtype || p.shape.length !== first.shape.length || p.shape.some((d, i) => d !== first.shape[i])) {
      throw new ServingError(
        'E_STAGE_FAILED',
        `${what}: batch element 0 is ${first.dtype} [${first.shape.join(', ')}], element ${j} is ${p.dtype} [${p.shape.join(', ')}]; the elements of a v2 output tensor must have one dtype and shape`,
      );
    }
  }
  const shape = [parts.length, ...first.shape];
  if (parts.length === 1) return { dtype: first.dtype, shape, data: first.data } as Tensor;
  if (!isNumericDType(first.dtype)) {
    return { dtype: first.dtype, shape, data: parts.flatMap((p) => p.data as readonly Uint8Array[]) };
  }
  const per = dataLength(first);
  const out = allocate(first.dtype, per * parts.length);
  parts.forEach((p, j) => (out as { set(a: ArrayLike<number | bigint>, at: number): void }).set(p.data as ArrayLike<number | bigint>, j * per));
  return { dtype: first.dtype, shape, data: out } as Tensor;
}
