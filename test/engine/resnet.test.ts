// The resnet example: image bytes → sharp preprocessing stage → CNN → top-1 / top-5.
import t from 'tap';
import sharp from 'sharp';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { BUNDLED_SERVABLES } from '../helpers/fixtures.js';

const engine = new ServingServer();
engine.log = () => {};
t.before(async () => {
  await ensureExampleModels(BUNDLED_SERVABLES);
  await engine.startServables(new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES, servableName: 'resnet', numParallelWorkers: 2 }));
});
t.teardown(() => engine.stop());

async function picture(format: 'png' | 'jpeg', seed: number, width = 320, height = 240): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7 + seed * 13 + ((i / (width * 3)) | 0) * seed) & 255;
  return sharp(raw, { raw: { width, height, channels: 3 } })[format]().toBuffer();
}
const image = (bytes: Buffer) => ({ image: { dtype: 'bytes' as const, shape: [], data: [bytes] } });

t.test('classify_top1 labels PNG and JPEG images, deterministically', async (t) => {
  const png = await picture('png', 1);
  const jpeg = await picture('jpeg', 2, 640, 480);
  const out = await engine.infer('resnet', 'classify_top1', [image(png), image(jpeg), image(png)]);
  for (const o of out) {
    t.equal(o.label!.dtype, 'string');
    t.match(Buffer.from((o.label!.data as Uint8Array[])[0]!).toString(), /^class_\d+$/);
  }
  t.same(out[0]!.label!.data, out[2]!.label!.data, 'same image, same label');
});

t.test('classify_top5 returns five labels with descending scores', async (t) => {
  const [o] = await engine.infer('resnet', 'classify_top5', [image(await picture('png', 3))]);
  t.same(o!.labels!.shape, [5]);
  const scores = [...(o!.scores!.data as Float32Array)];
  t.equal(scores.length, 5);
  t.same([...scores].sort((a, b) => b - a), scores, 'sorted best first');
  t.ok(scores.every((s) => s > 0 && s < 1), 'softmax probabilities');
  const top1 = await engine.infer('resnet', 'classify_top1', [image(await picture('png', 3))]);
  t.same(top1[0]!.label!.data[0], o!.labels!.data[0], 'top-1 is the first of top-5');
});

t.test('bytes that are not an image fail that instance with a clear error', async (t) => {
  const out = await engine.inferEach('resnet', 'classify_top1', [image(Buffer.from('not an image')), image(await picture('png', 4))]);
  t.ok(out[0] instanceof ServingError);
  t.match((out[0] as ServingError).message, /cannot decode the image/);
  t.notOk(out[1] instanceof ServingError, 'the good image in the same request is answered');
});
