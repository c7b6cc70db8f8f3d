// A distributed servable for tests of the agent link: `mmcol`, x [8] batched along N, y = -(x @ W)
// with W [8, 4] split by columns over `ranks` rank models and joined on axis 1, in a fixture
// folder with its rank table; and the checks the tests share.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { columnShardModel, matmulReference, patternWeight, rankTableJson } from '../../dist/servables/distributed-models.js';
import { type ServableFixture, servableFixture } from './fixtures.js';

export const INNER = 8;
export const COLS = 4;

export interface ColumnServable {
  readonly fx: ServableFixture;
  /** The rank models, in rank order. */
  readonly modelFiles: string[];
  /** Instance k's input. */
  row(k: number): Float32Array;
  /** The product the servable must give for `x`. */
  expected(x: Float32Array): Float32Array;
}

export function columnServable(name: string, ranks: number): ColumnServable {
  const weight = patternWeight(INNER, COLS);
  const fx = servableFixture(name);
  fx.config(
    'mmcol',
    `import { distributed, register } from 'actorserve';
const model = distributed.declareServable({ rankSize: ${ranks}, stageSize: 1, combine: 'concat', concatAxis: 1, maxBatchSize: 8 });
register.method('predict', { outputs: ['y'] }, (x) => register.addStage(model, [x]));`,
  );
  const modelFiles = Array.from({ length: ranks }, (_, rank) => {
    const file = path.join(fx.dir, 'mmcol', 'model', `device${rank}`, 'matmul.onnx');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, columnShardModel({ rows: 'N', inner: INNER, cols: COLS, weight, ranks, rank }));
    return file;
  });
  writeFileSync(path.join(fx.dir, 'mmcol', 'rank_table.json'), rankTableJson(ranks));
  return {
    fx,
    modelFiles,
    row: (k) => Float32Array.from({ length: INNER }, (_, i) => Math.sin(k * 13 + i) * 3),
    expected: (x) => matmulReference(x, weight, 1, INNER, COLS),
  };
}

/** Whether two float arrays agree within 1e-4. */
export function near(actual: ArrayLike<number>, expected: ArrayLike<number>): boolean {
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < actual.length; i++) if (Math.abs(actual[i]! - expected[i]!) > 1e-4) return false;
  return true;
}

/** Polls `cond` every 20 ms; throws naming `what` after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
