/**
 * The static form of a servable method: a small DAG of stages, produced once at load time by
 * tracing the method's function (see register.ts). Plain data, so it can be logged, checked
 * and sent to other threads.
 */

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
}

export type Stage = ModelStage | FunctionStage;

export interface MethodGraph {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly stages: readonly Stage[];
  readonly returns: readonly ValueRef[];
}
