// Deterministic example/test models, built in-process with the ONNX graph builder.
// Every function returns the serialized model; the same arguments always give the same bytes.

import { attr, mulberry32, OnnxGraphBuilder, type Dim, type OnnxDType } from './onnx-builder.js';

/** Batch dimension: a fixed size, or a symbolic name such as 'N' for a dynamic batch. */
export interface BatchOptions {
  readonly batch: Dim;
}

function elementwiseModel(op: 'Add' | 'Sub', graphName: string, batch: Dim): Uint8Array {
  const shape: Dim[] = [batch, 2, 2];
  return new OnnxGraphBuilder(graphName)
    .addInput('x1', 'float32', shape)
    .addInput('x2', 'float32', shape)
    .addNode(op, ['x1', 'x2'], ['y'])
    .addOutput('y', 'float32', shape)
    .toBytes();
}

/** y = x1 + x2, all float32 [batch, 2, 2]. */
export function addModel({ batch }: BatchOptions): Uint8Array {
  return elementwiseModel('Add', 'tensor_add', batch);
}

/** y = x1 - x2, all float32 [batch, 2, 2]. */
export function subModel({ batch }: BatchOptions): Uint8Array {
  return elementwiseModel('Sub', 'tensor_sub', batch);
}

/** Inner and output widths of the matmul subgraph model. */
export const MATMUL_IN = 96;
export const MATMUL_OUT = 16;

/** The constant weight of the matmul subgraph model: W[i][j] = ((i * 16 + j) % 7 - 3) / 10. */
export function matmulWeight(): Float32Array {
  const w = new Float32Array(MATMUL_IN * MATMUL_OUT);
  for (let i = 0; i < MATMUL_IN; i++) {
    for (let j = 0; j < MATMUL_OUT; j++) w[i * MATMUL_OUT + j] = (((i * MATMUL_OUT + j) % 7) - 3) / 10;
  }
  return w;
}

/**
 * x: float32 [rows, 96] -> MatMul with constant W [96, 16] -> ReduceSum over axis 0 (keepdims=0)
 * -> y: float32 [16]. Used as matmul_0.onnx (rows 128) and matmul_1.onnx (rows 8).
 */
export function matmulSubgraphModel(rows: number): Uint8Array {
  return (
    new OnnxGraphBuilder(`matmul_${rows}`)
      .addInput('x', 'float32', [rows, MATMUL_IN])
      .addInitializer('W', 'float32', [MATMUL_IN, MATMUL_OUT], matmulWeight())
      // Since opset 13 ReduceSum takes `axes` as an optional int64 input, not an attribute.
      .addInitializer('axes', 'int64', [1], BigInt64Array.of(0n))
      .addNode('MatMul', ['x', 'W'], ['xw'])
      .addNode('ReduceSum', ['xw', 'axes'], ['y'], { attributes: { keepdims: attr.int(0) } })
      .addOutput('y', 'float32', [MATMUL_OUT])
      .toBytes()
  );
}

export interface IdentityOptions extends BatchOptions {
  /** Dims after the batch dim; default [] (input shape is just [batch]). */
  readonly shape?: readonly number[];
}

/** y = Identity(x), x and y of `dtype` with shape [batch, ...shape]. Works for every OnnxDType. */
export function identityModel(dtype: OnnxDType, { batch, shape = [] }: IdentityOptions): Uint8Array {
  const dims: Dim[] = [batch, ...shape];
  return new OnnxGraphBuilder(`identity_${dtype}`)
    .addInput('x', dtype, dims)
    .addNode('Identity', ['x'], ['y'])
    .addOutput('y', dtype, dims)
    .toBytes();
}

export interface MlpOptions extends BatchOptions {
  /** Number of MatMul + Add + Relu blocks (>= 1). */
  readonly layers: number;
  /** Hidden and output width. */
  readonly width: number;
  /** Input feature width; defaults to `width`. */
  readonly inputWidth?: number;
  /** PRNG seed for weights and biases. */
  readonly seed: number;
}

/**
 * A ReLU MLP: x float32 [batch, inputWidth] -> layers x (MatMul W[in, width] + bias[width] -> Relu)
 * -> y float32 [batch, width]. Weights are uniform in ±sqrt(3 / in) (std 1/sqrt(in)), biases
 * uniform in ±0.1, drawn from mulberry32(seed) layer by layer, so activations stay finite even
 * for deep stacks. Sized for perf runs (4 x 1024) and as a deliberately slow model (24 x 512).
 */
export function mlpModel({ layers, width, inputWidth, seed, batch }: MlpOptions): Uint8Array {
  if (!Number.isInteger(layers) || layers < 1) throw new RangeError(`mlpModel: layers must be >= 1, got ${layers}`);
  const rand = mulberry32(seed);
  const uniform = (n: number, limit: number): Float32Array => {
    const a = new Float32Array(n);
    for (let k = 0; k < n; k++) a[k] = (rand() * 2 - 1) * limit;
    return a;
  };

  const inWidth0 = inputWidth ?? width;
  const b = new OnnxGraphBuilder(`mlp_${layers}x${width}`).addInput('x', 'float32', [batch, inWidth0]);
  let prev = 'x';
  for (let l = 0; l < layers; l++) {
    const inW = l === 0 ? inWidth0 : width;
    const out = l === layers - 1 ? 'y' : `h${l}`;
    b.addInitializer(`W${l}`, 'float32', [inW, width], uniform(inW * width, Math.sqrt(3 / inW)))
      .addInitializer(`b${l}`, 'float32', [width], uniform(width, 0.1))
      .addNode('MatMul', [prev, `W${l}`], [`mm${l}`])
      .addNode('Add', [`mm${l}`, `b${l}`], [`pre${l}`])
      .addNode('Relu', [`pre${l}`], [out]);
    prev = out;
  }
  return b.addOutput('y', 'float32', [batch, width]).toBytes();
}
