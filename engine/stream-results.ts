/**
 * The whole result of a streaming method answered as one reply (a unary call: `infer`,
 * MindSpore Predict, REST without SSE): its partial results joined per output. Strings are
 * joined into one string, bytes into one bytes value, numeric tensors concatenated along axis 0
 * (a scalar partial counts as shape [1]).
 */
import { allocate, isNumericDType, type NumericArray } from './dtypes.js';
import { ServingError } from './errors.js';
import { type Tensor, stringTensor } from './tensor.js';

/**
 * Joins `partials` (each `outputsCount` tensors, as yielded) into one tensor per output. A
 * stream that yielded nothing gives an empty string per output (its dtypes are unknown).
 * Partials that do not join (dtypes differ, trailing dims differ) fail E_STAGE_FAILED naming
 * `tag`: the servable's bug.
 */
export function joinPartials(partials: readonly (readonly Tensor[])[], outputsCount: number, tag: string): Tensor[] {
  return Array.from({ length: outputsCount }, (_, k) => {
    const parts = partials.map((p) => p[k]!);
    return parts.length === 0 ? stringTensor('') : joinOutput(parts, `${tag} output ${k}`);
  });
}

function joinOutput(parts: readonly Tensor[], what: string): Tensor {
  const dtype = parts[0]!.dtype;
  const other = parts.find((t) => t.dtype !== dtype);
  if (other) throw new ServingError('E_STAGE_FAILED', `${what}: partial results of a stream do not join: ${dtype} then ${other.dtype}`);
  if (!isNumericDType(dtype)) {
    const joined = Buffer.concat(parts.flatMap((t) => t.data as readonly Uint8Array[]));
    return { dtype, shape: [], data: [joined] };
  }
  const rest = (t: Tensor): readonly number[] => t.shape.slice(1);
  const inner = rest(parts[0]!);
  const misfit = parts.find((t) => rest(t).join(',') !== inner.join(','));
  if (misfit) {
    throw new ServingError('E_STAGE_FAILED', `${what}: partial results of a stream do not join along axis 0: shapes [${parts[0]!.shape.join(', ')}] and [${misfit.shape.join(', ')}]`);
  }
  let rows = 0;
  let length = 0;
  for (const t of parts) {
    rows += t.shape.length === 0 ? 1 : t.shape[0]!;
    length += (t.data as NumericArray).length;
  }
  const data: NumericArray = allocate(dtype, length);
  let at = 0;
  for (const t of parts) {
    (data as Uint8Array).set(t.data as Uint8Array, at);
    at += (t.data as NumericArray).length;
  }
  return { dtype, shape: [rows, ...inner], data } as Tensor;
}
