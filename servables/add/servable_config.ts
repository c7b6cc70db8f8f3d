// The `add` servable: float32 element-wise add of two [2, 2] tensors per instance.
import { register, type Tensor } from 'actorserve';

const model = register.declareModel({ modelFile: 'tensor_add.onnx', modelFormat: 'onnx', withBatchDim: true });

/** Casts any numeric tensor to float32 (the stage before the model in `add_cast`). */
export function castToFloat32(x1: Tensor, x2: Tensor): [Tensor, Tensor] {
  return [toFloat32(x1), toFloat32(x2)];
}

function toFloat32(t: Tensor): Tensor {
  if (t.dtype === 'string' || t.dtype === 'bytes') throw new Error(`add_cast takes numeric tensors, got ${t.dtype}`);
  if (t.dtype === 'float16') throw new Error('add_cast does not take float16 inputs');
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
  return { dtype: 'float32', shape: t.shape, data: out };
}

register.method('add_common', { outputs: ['y'] }, (x1, x2) => {
  return register.addStage(model, [x1, x2], { outputsCount: 1 });
});

register.method('add_cast', { outputs: ['y'] }, (x1, x2) => {
  const [a, b] = register.addStage(castToFloat32, [x1, x2], { outputsCount: 2 });
  return register.addStage(model, [a, b], { outputsCount: 1 });
});
