// The `matmul_distributed` servable (MindSpore's distributed example): y = -(x @ W) with
// x float32 [128, 96] and W = 0.5 everywhere [96, 16], split by columns over 8 ranks: rank r
// holds W[:, 2r:2r+2] in model/device<r>/matmul.onnx and computes its two output columns; the
// engine joins the ranks' [128, 2] outputs along axis 1. A client sending ones gets [128, 16]
// of -48. The ranks run in agent processes (docs/distributed.md):
//
//   node -e "import('actorserve').then(({ distributed, server }) => ...)"   (or the README's commands)
import { distributed, register } from 'actorserve';

const model = distributed.declareServable({ rankSize: 8, stageSize: 1, withBatchDim: false, combine: 'concat', concatAxis: 1 });

register.method('predict', { outputs: ['y'] }, (x) => register.addStage(model, [x]));
