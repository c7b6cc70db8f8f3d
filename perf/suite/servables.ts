/**
 * The perf suite's servable folder (under perf/out/, git-ignored) and request bodies, all
 * generated deterministically:
 *
 *   <out>/servables/add      add_common(x1, x2) -> y      the bundled `add` (float32 [2, 2])
 *   <out>/servables/mlp      predict(x) -> y              4 × 1024 ReLU MLP, x float32 [1024]
 *   <out>/servables/resnet   classify_top1(image) -> label the bundled `resnet` (JPEG → CNN)
 *   <out>/inputs/{add,mlp,resnet}.json                    one instance per request
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { addModel, mlpModel, resnetModel } from '../../servables/example-models.js';
import { ADD_EXAMPLE_BODY } from '../../cli/bench-input.js';

export const MLP_LAYERS = 4;
export const MLP_WIDTH = 1024;
/** The MLP servable's batch limit: what dynamic batching may combine. */
export const MLP_MAX_BATCH = 64;

const MLP_CONFIG = `// perf suite: a ${MLP_LAYERS} x ${MLP_WIDTH} ReLU MLP, one instance = x float32 [${MLP_WIDTH}].
import { register } from 'actorserve';

const model = register.declareModel({ modelFile: 'mlp.onnx', modelFormat: 'onnx', withBatchDim: true, maxBatchSize: ${MLP_MAX_BATCH} });

register.method('predict', { outputs: ['y'] }, (x) => {
  return register.addStage(model, [x], { outputsCount: 1 });
});
`;

export interface SuiteFiles {
  readonly servableDir: string;
  readonly inputs: { readonly add: string; readonly mlp: string; readonly resnet: string };
  readonly models: { readonly add: string; readonly mlp: string; readonly resnet: string };
}

async function writeIfChanged(file: string, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
  if (existsSync(file) && Buffer.compare(await readFile(file), bytes) === 0) return;
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
}

/** A deterministic 320 × 240 JPEG (a smooth colour pattern), as a camera would send. */
export async function sampleJpeg(): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  const w = 320;
  const h = 240;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      raw[i] = (x * 255) / w;
      raw[i + 1] = (y * 255) / h;
      raw[i + 2] = 128 + 127 * Math.sin((x + y) / 17);
    }
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
}

/** Writes (or keeps, when unchanged) the servables and inputs under `outDir`. */
export async function prepareSuite(outDir: string, projectRoot: string): Promise<SuiteFiles> {
  const servableDir = path.join(outDir, 'servables');
  const models = {
    add: path.join(servableDir, 'add', '1', 'tensor_add.onnx'),
    mlp: path.join(servableDir, 'mlp', '1', 'mlp.onnx'),
    resnet: path.join(servableDir, 'resnet', '1', 'resnet.onnx'),
  };
  await writeIfChanged(models.add, addModel({ batch: 'N' }));
  await writeIfChanged(models.mlp, mlpModel({ layers: MLP_LAYERS, width: MLP_WIDTH, seed: 1, batch: 'N' }));
  await writeIfChanged(models.resnet, resnetModel({ batch: 'N' }));
  for (const name of ['add', 'resnet']) {
    await mkdir(path.join(servableDir, name), { recursive: true });
    await copyFile(path.join(projectRoot, 'servables', name, 'servable_config.ts'), path.join(servableDir, name, 'servable_config.ts'));
  }
  await writeIfChanged(path.join(servableDir, 'mlp', 'servable_config.ts'), MLP_CONFIG);

  const inputDir = path.join(outDir, 'inputs');
  const inputs = { add: path.join(inputDir, 'add.json'), mlp: path.join(inputDir, 'mlp.json'), resnet: path.join(inputDir, 'resnet.json') };
  await writeIfChanged(inputs.add, ADD_EXAMPLE_BODY);
  const x = Array.from({ length: MLP_WIDTH }, (_, i) => Math.round(Math.sin(i * 0.37) * 1000) / 1000);
  await writeIfChanged(inputs.mlp, JSON.stringify({ instances: { x } }));
  await writeIfChanged(inputs.resnet, JSON.stringify({ instances: { image: { b64: (await sampleJpeg()).toString('base64') } } }));
  return { servableDir, inputs, models };
}
