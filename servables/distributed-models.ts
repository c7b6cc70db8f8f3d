// Deterministic shard models of distributed servables: y = -(x @ W) split over ranks, either by
// W's columns (column-parallel: each rank gives some output columns, combine 'concat' on axis 1)
// or by W's rows (row-parallel: each rank multiplies its slice of x's columns by its rows of W,
// giving a partial product; combine 'sum'). Every rank receives the whole x (broadcast), so a
// row-parallel rank slices x itself. `matmulReference` is the unsplit product in plain TS.

import { type Dim, OnnxGraphBuilder } from './onnx-builder.js';

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
