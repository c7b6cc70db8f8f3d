// Deterministic shard models of distributed servables: y = -(x @ W) split over ranks, either by
// W's columns (column-parallel: each rank gives some output columns, combine 'concat' on axis 1)
// or by W's rows (row-parallel: each rank multiplies its slice of x's columns by its rows of W,
// giving a partial product; combine 'sum'). Every rank receives the whole x (broadcast), so a
// row-parallel rank slices x itself. `matmulReference` is the unsplit product in plain TS.

import { type Dim, OnnxGraphBuilder, mulberry32 } from './onnx-builder.js';

/** MindSpore's example: x float32 [128, 96], W = 0.5 everywhere [96, 16], 8 ranks. */
export const DIST_ROWS = 128;
export const DIST_INNER = 96;
export const DIST_COLS = 16;
export const DIST_RANKS = 8;

/** W of MindSpore's example: 0.5 everywhere. */
export function halfWeight(inner = DIST_INNER, cols = DIST_COLS): Float32Array {
  return new Float32Array(inner * cols).fill(0.5);
}

/** A weight whose every element differs (tests see a misplaced column or row): W[i][j] = ((i * 7 + j * 3) % 11 - 5) / 8. */
export function patternWeight(inner: number, cols: number): Float32Array {
  const w = new Float32Array(inner * cols);
  for (let i = 0; i < inner; i++) for (let j = 0; j < cols; j++) w[i * cols + j] = (((i * 7 + j * 3) % 11) - 5) / 8;
  return w;
}

export interface ShardOptions {
  /** Rows of x: a fixed number (no batch dim) or a symbol such as 'N'. */
  readonly rows: Dim;
  readonly inner: number;
  readonly cols: number;
  /** The full weight, [inner, cols] row-major. */
  readonly weight: Float32Array;
  readonly ranks: number;
  readonly rank: number;
}

/** Rank `rank`'s model of the column split: y_r = -(x @ W[:, cols_r]), [rows, cols / ranks]. */
export function columnShardModel(o: ShardOptions): Uint8Array {
  const width = o.cols / o.ranks;
  if (!Number.isInteger(width)) throw new Error(`${o.cols} columns do not split over ${o.ranks} ranks`);
  const shard = new Float32Array(o.inner * width);
  for (let i = 0; i < o.inner; i++) shard.set(o.weight.subarray(i * o.cols + o.rank * width, i * o.cols + (o.rank + 1) * width), i * width);
  return new OnnxGraphBuilder(`matmul_column_${o.rank}`)
    .addInput('x', 'float32', [o.rows, o.inner])
    .addInitializer('W', 'float32', [o.inner, width], shard)
    .addNode('MatMul', ['x', 'W'], ['xw'])
    .addNode('Neg', ['xw'], ['y'])
    .addOutput('y', 'float32', [o.rows, width])
    .toBytes();
}

/** Rank `rank`'s model of the row split: y_r = -(x[:, rows_r] @ W[rows_r, :]), [rows, cols] (a partial sum). */
export function rowShardModel(o: ShardOptions): Uint8Array {
  const depth = o.inner / o.ranks;
  if (!Number.isInteger(depth)) throw new Error(`${o.inner} rows of W do not split over ${o.ranks} ranks`);
  const from = o.rank * depth;
  return new OnnxGraphBuilder(`matmul_row_${o.rank}`)
    .addInput('x', 'float32', [o.rows, o.inner])
    .addInitializer('W', 'float32', [depth, o.cols], o.weight.slice(from * o.cols, (from + depth) * o.cols))
    .addInitializer('starts', 'int64', [1], BigInt64Array.of(BigInt(from)))
    .addInitializer('ends', 'int64', [1], BigInt64Array.of(BigInt(from + depth)))
    .addInitializer('axes', 'int64', [1], BigInt64Array.of(1n))
    .addNode('Slice', ['x', 'starts', 'ends', 'axes'], ['xs'])
    .addNode('MatMul', ['xs', 'W'], ['xw'])
    .addNode('Neg', ['xw'], ['y'])
    .addOutput('y', 'float32', [o.rows, o.cols])
    .toBytes();
}

/** -(x @ W) in plain TS: x [rows, inner], W [inner, cols], both row-major. */
export function matmulReference(x: Float32Array, weight: Float32Array, rows: number, inner: number, cols: number): Float32Array {
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let i = 0; i < inner; i++) s += x[r * inner + i]! * weight[i * cols + j]!;
      y[r * cols + j] = -s;
    }
  }
  return y;
}

/** The rank table of `ranks` ranks on one host (device ids 0…ranks-1), as MindSpore writes it. */
export function rankTableJson(ranks: number, host = '127.0.0.1'): string {
  const device = Array.from({ length: ranks }, (_, i) => ({ device_id: String(i), device_ip: `192.1.27.${6 + i}`, rank_id: String(i) }));
  return `${JSON.stringify({ version: '1.0', server_count: '1', server_list: [{ server_id: host, device, host_nic_ip: 'reserve' }], status: 'completed' }, null, 2)}\n`;
}

// ---- the 2-stage pipeline example (mlp_pipeline) ----

/**
 * An MLP of four dense layers, x [N, 8] → 16 → 12 → 16 → 4, with ReLU after the first three:
 * y = relu(relu(relu(x W1 + b1) W2 + b2) W3 + b3) W4 + b4. Split into 2 pipeline stages of 2
 * ranks each, Megatron-style, so that each stage's ranks are combined by `sum`: in a stage, rank r
 * computes its half of the first layer's units (columns of W1, entries of b1), applies the ReLU,
 * and multiplies by its half of the second layer's rows (rows of W2); the two partial products
 * add up to the layer's output, and rank 0 adds the bias. Stage 1 starts with the ReLU that
 * follows layer 2 (it gets stage 0's summed output, before the ReLU).
 */
export const PIPE_DIMS: readonly [number, number, number, number, number] = [8, 16, 12, 16, 4];
/** An MLP's widths: input, three hidden layers, output (the two split hidden widths even). */
export type PipelineDims = readonly [number, number, number, number, number];
export const PIPE_STAGES = 2;
export const PIPE_RANKS_PER_STAGE = 2;

interface Dense {
  readonly w: Float32Array; // [in, out] row-major
  readonly b: Float32Array; // [out]
}

/** The MLP's weights: deterministic (mulberry32, seed 13), in [-0.5, 0.5). */
export function pipelineWeights(dims: PipelineDims = PIPE_DIMS): Dense[] {
  const rand = mulberry32(13);
  const next = (): number => rand() - 0.5;
  return dims.slice(1).map((out, l) => {
    const inp = dims[l]!;
    return { w: Float32Array.from({ length: inp * out }, next), b: Float32Array.from({ length: out }, next) };
  });
}

/** The unsplit MLP: x [N, 8] → y [N, 4] (other widths: `dims`). */
export function pipelineFullModel(dims: PipelineDims = PIPE_DIMS): Uint8Array {
  const layers = pipelineWeights(dims);
  const g = new OnnxGraphBuilder('mlp_pipeline_full').addInput('x', 'float32', ['N', dims[0]]);
  let last = 'x';
  layers.forEach((d, l) => {
    g.addInitializer(`W${l}`, 'float32', [dims[l]!, dims[l + 1]!], d.w)
      .addInitializer(`b${l}`, 'float32', [dims[l + 1]!], d.b)
      .addNode('MatMul', [last, `W${l}`], [`m${l}`])
      .addNode('Add', [`m${l}`, `b${l}`], [`a${l}`]);
    last = `a${l}`;
    if (l < layers.length - 1) {
      g.addNode('Relu', [last], [`r${l}`]);
      last = `r${l}`;
    }
  });
  return g.addNode('Identity', [last], ['y']).addOutput('y', 'float32', ['N', dims[4]]).toBytes();
}

/** Columns `from`…`from + n − 1` of a row-major [rows, cols] matrix. */
function columns(m: Float32Array, rows: number, cols: number, from: number, n: number): Float32Array {
  const out = new Float32Array(rows * n);
  for (let i = 0; i < rows; i++) out.set(m.subarray(i * cols + from, i * cols + from + n), i * n);
  return out;
}

/**
 * Rank `rank` (0…3; stage = rank / 2) of the split MLP: stage 0 takes x [N, 8] and gives its
 * partial z [N, 12]; stage 1 takes z and gives its partial y [N, 4].
 */
export function pipelineRankModel(rank: number, dims: PipelineDims = PIPE_DIMS): Uint8Array {
  const layers = pipelineWeights(dims);
  const stage = Math.floor(rank / PIPE_RANKS_PER_STAGE);
  const part = rank % PIPE_RANKS_PER_STAGE;
  const [a, b] = [layers[2 * stage]!, layers[2 * stage + 1]!];
  const [inp, hidden, out] = [dims[2 * stage]!, dims[2 * stage + 1]!, dims[2 * stage + 2]!];
  const half = hidden / PIPE_RANKS_PER_STAGE;
  const [input, output] = stage === 0 ? ['x', 'z'] : ['z', 'y'];
  const g = new OnnxGraphBuilder(`mlp_pipeline_rank${rank}`)
    .addInput(input, 'float32', ['N', inp])
    .addInitializer('Wa', 'float32', [inp, half], columns(a.w, inp, hidden, part * half, half))
    .addInitializer('ba', 'float32', [half], a.b.slice(part * half, (part + 1) * half))
    .addInitializer('Wb', 'float32', [half, out], b.w.slice(part * half * out, (part + 1) * half * out));
  let first = input;
  if (stage > 0) {
    g.addNode('Relu', [input], ['in_relu']);
    first = 'in_relu';
  }
  g.addNode('MatMul', [first, 'Wa'], ['ma']).addNode('Add', ['ma', 'ba'], ['aa']).addNode('Relu', ['aa'], ['ra']).addNode('MatMul', ['ra', 'Wb'], ['mb']);
  if (part === 0) g.addInitializer('bb', 'float32', [out], b.b).addNode('Add', ['mb', 'bb'], [output]);
  else g.addNode('Identity', ['mb'], [output]);
  return g.addOutput(output, 'float32', ['N', out]).toBytes();
}
