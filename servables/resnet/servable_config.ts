// The `resnet` servable: encoded image bytes (JPEG/PNG/WebP...) → decode, resize and normalise
// in a TS stage (sharp, on the stage pool) → a ResNet-shaped CNN → top-1 label or top-5
// labels with scores. The CNN is generated (untrained): labels are `class_<index>`.
import sharp from 'sharp';
import { register, type Tensor } from 'actorserve';

const SIDE = 224;
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

const model = register.declareModel({ modelFile: 'resnet.onnx', modelFormat: 'onnx', maxBatchSize: 8 });

/** Image bytes → float32 [3, 224, 224], ImageNet-normalised, channels first. */
export async function preprocess(image: Tensor): Promise<Tensor> {
  if (image.dtype !== 'bytes' && image.dtype !== 'string') throw new Error(`image must be bytes, got ${image.dtype}`);
  if (image.data.length !== 1) throw new Error(`image must hold one encoded picture, got ${image.data.length}`);
  let rgb: Buffer;
  try {
    rgb = await sharp(image.data[0]).removeAlpha().resize(SIDE, SIDE, { fit: 'fill' }).toColourspace('srgb').raw().toBuffer();
  } catch (err) {
    throw new Error(`cannot decode the image: ${(err as Error).message}`, { cause: err });
  }
  const plane = SIDE * SIDE;
  const x = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) x[c * plane + i] = (rgb[i * 3 + c]! / 255 - MEAN[c]!) / STD[c]!;
  }
  return { dtype: 'float32', shape: [3, SIDE, SIDE], data: x };
}

/** Indices of the k highest scores, best first (equal scores: lower index first); one pass. */
function ranked(probs: Tensor, k: number): number[] {
  if (probs.dtype !== 'float32') throw new Error(`expected float32 scores, got ${probs.dtype}`);
  const p = probs.data;
  const score = (i: number): number => (Number.isNaN(p[i]) ? -Infinity : p[i]!); // NaN ranks last
  const best: number[] = [];
  for (let i = 0; i < p.length; i++) {
    const v = score(i);
    if (best.length === k && !(v > score(best[k - 1]!))) continue;
    let j = best.length < k ? best.push(i) - 1 : k - 1;
    while (j > 0 && score(best[j - 1]!) < v) {
      best[j] = best[j - 1]!;
      j--;
    }
    best[j] = i;
  }
  return best;
}

/** The label of the highest score. */
export function top1(probs: Tensor): string {
  return `class_${ranked(probs, 1)[0]}`;
}

/** The five best labels and their scores. */
export function top5(probs: Tensor): [Tensor, Tensor] {
  const best = ranked(probs, 5);
  const scores = probs.data as Float32Array;
  return [
    { dtype: 'string', shape: [5], data: best.map((i) => Buffer.from(`class_${i}`)) },
    { dtype: 'float32', shape: [5], data: Float32Array.from(best, (i) => scores[i]!) },
  ];
}

register.method('classify_top1', { outputs: ['label'] }, (image) => {
  const x = register.addStage(preprocess, [image]);
  const probs = register.addStage(model, [x]);
  return register.addStage(top1, [probs]);
});

register.method('classify_top5', { outputs: ['labels', 'scores'] }, (image) => {
  const x = register.addStage(preprocess, [image]);
  const probs = register.addStage(model, [x]);
  return register.addStage(top5, [probs], { outputsCount: 2 });
});
