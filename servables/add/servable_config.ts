// The `add` servable: float32 element-wise add of two [2, 2] tensors per instance.
import { castTensor, register, ServingError, type Tensor } from 'actorserve';

const model = register.declareModel({ modelFile: 'tensor_add.onnx', modelFormat: 'onnx', withBatchDim: true });

/**
 * Casts both inputs to float32 (the stage before the model in `add_cast`, MindSpore's
 * `x.astype(np.float32)`): every numeric dtype, float16 and bool included. A string or bytes
 * input is the client's mistake: a 400 (E_INVALID_ARGUMENT), not a failure of the servable.
 */
export function castToFloat32(x1: Tensor, x2: Tensor): [Tensor, Tensor] {
  return [toFloat32(x1, 'x1'), toFloat32(x2, 'x2')];
}

function toFloat32(t: Tensor, name: string): Tensor {
  if (t.dtype === 'string' || t.dtype === 'bytes') {
    throw new ServingError('E_INVALID_ARGUMENT', `add_cast takes numeric inputs (bool, int*, uint*, float16/32/64), got ${t.dtype} for ${name}`);
  }
  // a value float32 cannot hold (beyond ±3.4e38) is refused as a client error too
  return castTensor(t, 'float32', `add_cast input ${name}`);
}

register.method('add_common', { outputs: ['y'] }, (x1, x2) => {
  return register.addStage(model, [x1, x2], { outputsCount: 1 });
});

register.method('add_cast', { outputs: ['y'] }, (x1, x2) => {
  const [a, b] = register.addStage(castToFloat32, [x1, x2], { outputsCount: 2 });
  return register.addStage(model, [a, b], { outputsCount: 1 });
});
