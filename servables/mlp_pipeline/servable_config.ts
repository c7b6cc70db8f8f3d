// The `mlp_pipeline` servable: a 2-stage pipeline of 2 tensor-parallel ranks each. The model is
// an MLP x float32 [N, 8] → 16 → 12 → 16 → y [N, 4] (ReLU between layers); stage 0 (ranks 0, 1)
// holds layers 1–2, stage 1 (ranks 2, 3) layers 3–4, each layer pair split Megatron-style so
// that a stage's two partial outputs add up (`combine: 'sum'`); stage 1 gets stage 0's sum.
// The result equals the unsplit model (model/unsplit.onnx) within float rounding. Rank r's
// model is model/device<r>/mlp.onnx (`npm run gen-models`); the ranks run in agent processes
// (docs/distributed.md, "A pipeline").
import { distributed, register } from 'actorserve';

const model = distributed.declareServable({ rankSize: 4, stageSize: 2, combine: 'sum', maxBatchSize: 16 });

register.method('predict', { outputs: ['y'] }, (x) => register.addStage(model, [x]));
