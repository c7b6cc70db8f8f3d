/**
 * Stateful-sequence test helpers: the `rnn` example's inputs for several sequences (seeded),
 * and the check of a sequence's outputs against the plain-TS reference (servables/example-models.ts).
 */
import type { Test } from 'tap';
import { RNN_HIDDEN, RNN_IN, rnnReference } from '../../dist/servables/example-models.js';
import { mulberry32 } from '../../dist/servables/onnx-builder.js';

/** `steps` inputs x [4] for sequence `s` (the same for the same arguments). */
export function sequenceInputs(s: number, steps: number): Float32Array[] {
  const rand = mulberry32(1000 + s);
  return Array.from({ length: steps }, () => Float32Array.from({ length: RNN_IN }, () => rand() * 2 - 1));
}

/** The x tensor of one step. */
export function xTensor(x: Float32Array) {
  return { dtype: 'float32' as const, shape: [RNN_IN], data: x };
}

/** One step's outputs as any transport gives them back: y's 8 numbers and the step count. */
export interface StepOutput {
  readonly y: ArrayLike<number>;
  readonly steps: number;
}

/** Checks one sequence's outputs, step by step, against the reference run of that sequence alone. */
export function checkAgainstReference(t: Test, label: string, xs: readonly Float32Array[], got: readonly StepOutput[]): void {
  const want = rnnReference(xs);
  t.equal(got.length, want.length, `${label}: one output per step`);
  let worst = 0;
  want.forEach((w, k) => {
    const g = got[k]!;
    t.equal(g.y.length, RNN_HIDDEN, `${label} step ${k}: y has ${RNN_HIDDEN} values`);
    for (let j = 0; j < RNN_HIDDEN; j++) worst = Math.max(worst, Math.abs(g.y[j]! - w.y[j]!));
    t.equal(g.steps, w.steps, `${label} step ${k}: the state's step count`);
  });
  t.ok(worst < 1e-5, `${label}: every y within 1e-5 of the reference (worst ${worst.toExponential(2)})`);
}
