// The `matmul` servable: one model of two subgraphs sharing a [96, 16] weight, called from a
// stage function. Subgraph 0 takes x [128, 96], subgraph 1 takes y [8, 96]; each multiplies by
// the weight and sums over axis 0, giving [16]. predict returns z = sum0 + sum1.
import { register, type Tensor } from 'actorserve';

const model = register.declareModel({
  modelFile: ['matmul_0.onnx', 'matmul_1.onnx'],
  modelFormat: 'onnx',
  withBatchDim: false,
});

export async function predictStage(x: Tensor, y: Tensor): Promise<Tensor> {
  const [a] = await model.call([x], { subgraph: 0 });
  const [b] = await model.call([y], { subgraph: 1 });
  if (a!.dtype !== 'float32' || b!.dtype !== 'float32') throw new Error('matmul subgraphs must output float32');
  const z = new Float32Array(a.data.length);
  for (let i = 0; i < z.length; i++) z[i] = a.data[i]! + b.data[i]!;
  return { dtype: 'float32', shape: a.shape, data: z };
}

register.method('predict', { outputs: ['z'] }, (x, y) => {
  return register.addStage(predictStage, [x, y]);
});
