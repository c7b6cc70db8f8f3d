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

/** Classes of the ResNet-shaped example CNN. */
export const RESNET_CLASSES = 1000;
/** Input side of the ResNet-shaped example CNN (images are resized to SIDE × SIDE). */
export const RESNET_SIDE = 224;

/**
 * A small ResNet-shaped CNN: x float32 [batch, 3, 224, 224] (normalised RGB, CHW) → stem
 * (7×7/2 conv, ReLU, 3×3/2 max-pool) → four basic residual blocks (16, 32, 64, 128 channels;
 * the last three stride 2 with a 1×1 projection shortcut) → global average pool → fully
 * connected → softmax → y float32 [batch, 1000]. He-uniform weights from mulberry32(seed):
 * untrained, but shaped and costed like the real thing (about 80 M multiply-adds per image).
 */
export function resnetModel({ batch, seed = 20 }: BatchOptions & { readonly seed?: number }): Uint8Array {
  const rand = mulberry32(seed);
  const b = new OnnxGraphBuilder('resnet_mini').addInput('x', 'float32', [batch, 3, RESNET_SIDE, RESNET_SIDE]);
  let n = 0;
  const conv = (input: string, cin: number, cout: number, k: number, stride: number): string => {
    const name = `conv${n++}`;
    const limit = Math.sqrt(6 / (cin * k * k));
    const w = new Float32Array(cout * cin * k * k);
    for (let i = 0; i < w.length; i++) w[i] = (rand() * 2 - 1) * limit;
    const bias = new Float32Array(cout);
    b.addInitializer(`${name}_w`, 'float32', [cout, cin, k, k], w)
      .addInitializer(`${name}_b`, 'float32', [cout], bias)
      .addNode('Conv', [input, `${name}_w`, `${name}_b`], [name], {
        attributes: {
          kernel_shape: attr.ints([k, k]),
          strides: attr.ints([stride, stride]),
          pads: attr.ints(Array(4).fill((k - 1) >> 1)),
        },
      });
    return name;
  };
  const relu = (input: string): string => {
    const name = `relu${n++}`;
    b.addNode('Relu', [input], [name]);
    return name;
  };
  const block = (input: string, cin: number, cout: number, stride: number): string => {
    const a = relu(conv(input, cin, cout, 3, stride));
    const c = conv(a, cout, cout, 3, 1);
    const shortcut = stride === 1 && cin === cout ? input : conv(input, cin, cout, 1, stride);
    const sum = `add${n++}`;
    b.addNode('Add', [c, shortcut], [sum]);
    return relu(sum);
  };

  let h = relu(conv('x', 3, 16, 7, 2));
  b.addNode('MaxPool', [h], ['pool'], { attributes: { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) } });
  h = block('pool', 16, 16, 1);
  h = block(h, 16, 32, 2);
  h = block(h, 32, 64, 2);
  h = block(h, 64, 128, 2);
  const fcLimit = Math.sqrt(6 / 128);
  const fcW = new Float32Array(128 * RESNET_CLASSES);
  for (let i = 0; i < fcW.length; i++) fcW[i] = (rand() * 2 - 1) * fcLimit;
  return b
    .addNode('GlobalAveragePool', [h], ['gap'])
    .addNode('Flatten', ['gap'], ['flat'], { attributes: { axis: attr.int(1) } })
    .addInitializer('fc_w', 'float32', [128, RESNET_CLASSES], fcW)
    .addInitializer('fc_b', 'float32', [RESNET_CLASSES], new Float32Array(RESNET_CLASSES))
    .addNode('Gemm', ['flat', 'fc_w', 'fc_b'], ['logits'])
    .addNode('Softmax', ['logits'], ['y'], { attributes: { axis: attr.int(1) } })
    .addOutput('y', 'float32', [batch, RESNET_CLASSES])
    .toBytes();
}

/** Widths of the recurrent example (`rnn` servable): x [N, 4], h [1, N, 8]. */
export const RNN_IN = 4;
export const RNN_HIDDEN = 8;

/** The recurrent cell's constant weights: W [4, 8], U [8, 8], b [8] (row-major, seeded). */
export function rnnWeights(): { readonly W: Float32Array; readonly U: Float32Array; readonly b: Float32Array } {
  const rand = mulberry32(14);
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
  return { W: fill(RNN_IN * RNN_HIDDEN, 0.8), U: fill(RNN_HIDDEN * RNN_HIDDEN, 0.6), b: fill(RNN_HIDDEN, 0.2) };
}

/**
 * A recurrent cell with two state tensors, for stateful sequences:
 *   inputs  x [N, 4], h [1, N, 8] (state, batch axis 1), count [N, 1] (state, batch axis 0)
 *   outputs y = tanh(x W + h U + b) [N, 8], steps = count + 1 [N, 1],
 *           h_next = y as [1, N, 8], count_next = steps
 * so y depends on every earlier step of its sequence and steps counts them.
 */
export function rnnModel({ batch }: BatchOptions): Uint8Array {
  const { W, U, b } = rnnWeights();
  return new OnnxGraphBuilder('rnn_cell')
    .addInput('x', 'float32', [batch, RNN_IN])
    .addInput('h', 'float32', [1, batch, RNN_HIDDEN])
    .addInput('count', 'float32', [batch, 1])
    .addInitializer('W', 'float32', [RNN_IN, RNN_HIDDEN], W)
    .addInitializer('U', 'float32', [RNN_HIDDEN, RNN_HIDDEN], U)
    .addInitializer('b', 'float32', [RNN_HIDDEN], b)
    .addInitializer('axis0', 'int64', [1], BigInt64Array.of(0n))
    .addInitializer('one', 'float32', [1], Float32Array.of(1))
    .addNode('Squeeze', ['h', 'axis0'], ['h2'])
    .addNode('MatMul', ['x', 'W'], ['xw'])
    .addNode('MatMul', ['h2', 'U'], ['hu'])
    .addNode('Add', ['xw', 'hu'], ['s1'])
    .addNode('Add', ['s1', 'b'], ['s2'])
    .addNode('Tanh', ['s2'], ['y'])
    .addNode('Unsqueeze', ['y', 'axis0'], ['h_next'])
    .addNode('Add', ['count', 'one'], ['steps'])
    .addNode('Identity', ['steps'], ['count_next'])
    .addOutput('y', 'float32', [batch, RNN_HIDDEN])
    .addOutput('h_next', 'float32', [1, batch, RNN_HIDDEN])
    .addOutput('steps', 'float32', [batch, 1])
    .addOutput('count_next', 'float32', [batch, 1])
    .toBytes();
}

/**
 * The plain-TS reference of `rnnModel` for one sequence: runs its steps in order from a zero
 * state and returns each step's outputs (what the server must give, step by step).
 */
export function rnnReference(xs: readonly ArrayLike<number>[]): { y: Float32Array; steps: number }[] {
  const { W, U, b } = rnnWeights();
  let h = new Float32Array(RNN_HIDDEN);
  return xs.map((x, step) => {
    const next = new Float32Array(RNN_HIDDEN);
    for (let j = 0; j < RNN_HIDDEN; j++) {
      let s = b[j]!;
      for (let i = 0; i < RNN_IN; i++) s += x[i]! * W[i * RNN_HIDDEN + j]!;
      for (let i = 0; i < RNN_HIDDEN; i++) s += h[i]! * U[i * RNN_HIDDEN + j]!;
      next[j] = Math.tanh(s);
    }
    h = next;
    return { y: next, steps: step + 1 };
  });
}
