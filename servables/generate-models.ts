// Writes the example servables' ONNX files (generated in-process, no download):
//   <dir>/add/1/tensor_add.onnx, <dir>/add_sub/1/{add,sub}.onnx, <dir>/matmul/1/matmul_{0,1}.onnx,
//   <dir>/resnet/1/resnet.onnx, <dir>/rnn/1/rnn.onnx,
//   <dir>/matmul_distributed/model/device{0..7}/matmul.onnx (its ranks' shards),
//   <dir>/mlp_pipeline/model/device{0..3}/mlp.onnx (2 stages × 2 ranks) and model/unsplit.onnx
//
// CLI: node dist/servables/generate-models.js [--force] [dir]
// (default dir: <project root>/servables, i.e. the source tree, not dist/).

import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { addModel, matmulSubgraphModel, resnetModel, rnnModel, subModel } from './example-models.js';
import {
  DIST_COLS,
  DIST_INNER,
  DIST_RANKS,
  DIST_ROWS,
  PIPE_RANKS_PER_STAGE,
  PIPE_STAGES,
  columnShardModel,
  halfWeight,
  pipelineFullModel,
  pipelineRankModel,
} from './distributed-models.js';
import { findPackageRoot } from '../engine/package-root.js';

export interface EnsureExampleModelsOptions {
  /** Rewrite every file even when it already exists. */
  readonly force?: boolean;
  /** Receives one progress line per written file. */
  readonly log?: (line: string) => void;
}

/** The example files, as (path relative to the servables dir, builder) pairs. */
const EXAMPLE_FILES: ReadonlyArray<readonly [string, () => Uint8Array]> = [
  ['add/1/tensor_add.onnx', () => addModel({ batch: 'N' })],
  ['add_sub/1/add.onnx', () => addModel({ batch: 'N' })],
  ['add_sub/1/sub.onnx', () => subModel({ batch: 'N' })],
  ['matmul/1/matmul_0.onnx', () => matmulSubgraphModel(128)],
  ['matmul/1/matmul_1.onnx', () => matmulSubgraphModel(8)],
  ['resnet/1/resnet.onnx', () => resnetModel({ batch: 'N' })],
  ['rnn/1/rnn.onnx', () => rnnModel({ batch: 'N' })],
  // MindSpore's layout: one folder per rank's device, beside servable_config.ts (the agents load them)
  ...Array.from(
    { length: DIST_RANKS },
    (_, rank) =>
      [
        `matmul_distributed/model/device${rank}/matmul.onnx`,
        () => columnShardModel({ rows: DIST_ROWS, inner: DIST_INNER, cols: DIST_COLS, weight: halfWeight(), ranks: DIST_RANKS, rank }),
      ] as const,
  ),
  ...Array.from({ length: PIPE_STAGES * PIPE_RANKS_PER_STAGE }, (_, rank) => [`mlp_pipeline/model/device${rank}/mlp.onnx`, () => pipelineRankModel(rank)] as const),
  ['mlp_pipeline/model/unsplit.onnx', () => pipelineFullModel()],
];

/** Writes `data` to `file` atomically: a temp file in the same folder, then rename over the target. */
async function writeFileAtomic(file: string, data: Uint8Array): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes the example model files that are missing under `servablesDir` (all of them when
 * `force`), creating folders as needed. Returns the absolute paths written, in a fixed order.
 */
export async function ensureExampleModels(
  servablesDir: string,
  opts: EnsureExampleModelsOptions = {},
): Promise<string[]> {
  const root = resolve(servablesDir);
  const written: string[] = [];
  for (const [rel, build] of EXAMPLE_FILES) {
    const file = join(root, ...rel.split('/'));
    if (!opts.force && existsSync(file)) continue;
    opts.log?.(`generating ${basename(root)}/${rel}`);
    await writeFileAtomic(file, build());
    written.push(file);
  }
  return written;
}

/** Walks up from `start` to the nearest folder holding a package.json. */
export function findProjectRoot(start: string): string {
  const root = findPackageRoot(start);
  if (root === undefined) throw new Error(`no package.json above ${start}`);
  return root;
}

async function main(argv: readonly string[]): Promise<void> {
  const force = argv.includes('--force');
  const positional = argv.filter((a) => !a.startsWith('--'));
  const dir =
    positional[0] !== undefined
      ? resolve(positional[0])
      : join(findProjectRoot(dirname(fileURLToPath(import.meta.url))), 'servables');
  const written = await ensureExampleModels(dir, { force, log: (line) => console.log(line) });
  if (written.length === 0) console.log(`example models already present in ${dir}`);
}

// Run as a script (not when imported).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
