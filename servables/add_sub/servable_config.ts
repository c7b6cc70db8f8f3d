// The `add_sub` servable: two models chained, and the same with function stages between.
import { register, type Tensor } from 'actorserve';

const addModel = register.declareModel({ modelFile: 'add.onnx', modelFormat: 'onnx', withBatchDim: true });
const subModel = register.declareModel({ modelFile: 'sub.onnx', modelFormat: 'onnx', withBatchDim: true });

/** y = x + 1, element-wise (float32). */
export function addOne(x: Tensor): Tensor {
  if (x.dtype !== 'float32') throw new Error(`addOne takes float32, got ${x.dtype}`);
  return { dtype: 'float32', shape: x.shape, data: x.data.map((v) => v + 1) };
}

// y = x1 + x2 - x3
register.method('add_sub_only_model', { outputs: ['y'] }, (x1, x2, x3) => {
  const sum = register.addStage(addModel, [x1, x2]);
  return register.addStage(subModel, [sum, x3]);
});

// y = x1 + x2 + 1 - x3 + 1
register.method('add_sub_complex', { outputs: ['y'] }, (x1, x2, x3) => {
  const sum = register.addStage(addModel, [x1, x2]);
  const sumPlusOne = register.addStage(addOne, [sum]);
  const diff = register.addStage(subModel, [sumPlusOne, x3]);
  return register.addStage(addOne, [diff]);
});
