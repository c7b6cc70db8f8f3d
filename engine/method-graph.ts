/**
 * The static form of a servable method: a small DAG of stages, produced once at load time by
 * tracing the method's function (see register.ts). Plain data, so it can be logged, checked
 * and sent to other threads.
 */

import type { DType } from './dtypes.js';

/** Where a value comes from: stage 0 is the method's inputs, stage k ≥ 1 is `stages[k - 1]`. */
export interface ValueRef {
  readonly stage: number;
  readonly output: number;
}

interface StageCommon {
  /** Label used in error messages: "Model 'x.onnx'" or "Function 'castToFloat32'". */
  readonly tag: string;
  readonly args: readonly ValueRef[];
  readonly outputsCount: number;
}

export interface ModelStage extends StageCommon {
  readonly kind: 'model';
  readonly modelKey: string;
  readonly subgraph: number;
}

export interface FunctionStage extends StageCommon {
  readonly kind: 'function';
  /** Export name of the function in servable_config.ts. */
  readonly functionName: string;
  /** undefined: the function takes one instance's inputs; a number: it takes a list of instances. */
  readonly batchSize: number | undefined;
  /** An async generator function whose yields are partial results (StageOptions.stream): the method's last stage. */
  readonly stream?: true;
}

export type Stage = ModelStage | FunctionStage;

/** The method's stream stage (its last stage, StageOptions.stream), if it has one. */
export function streamStage(m: Pick<MethodGraph, 'stages'>): FunctionStage | undefined {
  const last = m.stages.at(-1);
  return last?.kind === 'function' && last.stream ? last : undefined;
}

/**
 * What `register.method(name, { inputs: [{ name, dtype, shape }] })` declares of one input:
 * REST turns JSON numbers into `dtype`, and the runtime converts a typed tensor of another
 * numeric dtype to it (native/dtype-cast.ts) and refuses one whose dtype does not convert or
 * whose shape does not fit `dims` (per instance, no batch dim; -1 or a string is a dynamic dim).
 * Empty when the input is only named.
 */
export interface DeclaredInput {
  readonly dtype?: DType;
  readonly dims?: readonly (number | string)[];
}

export interface MethodGraph {
  readonly name: string;
  readonly inputs: readonly string[];
  /** Index-aligned with `inputs`. */
  readonly declaredInputs: readonly DeclaredInput[];
  readonly outputs: readonly string[];
  readonly stages: readonly Stage[];
  readonly returns: readonly ValueRef[];
}
