// The `rnn` servable: a stateful recurrent cell (docs/sequences.md). Each request is one step of
// a sequence: x [4] in, y = tanh(x W + h U + b) [8] and the step count `steps` [1] out, where h
// is the sequence's previous y. The state (h, batch axis 1, and count, batch axis 0) stays in
// the device actor that ran the sequence's start; sequences are batched together step by step.
import { register } from 'actorserve';

const model = register.declareModel({
  modelFile: 'rnn.onnx',
  modelFormat: 'onnx',
  withBatchDim: true,
  maxBatchSize: 8,
  sequence: {
    state: [
      { input: 'h', output: 'h_next', batchAxis: 1, initial: 'zeros' },
      { input: 'count', output: 'count_next', batchAxis: 0 },
    ],
    idleTimeoutMs: 60_000,
  },
});

register.method('step', { outputs: ['y', 'steps'] }, (x) => {
  return register.addStage(model, [x], { outputsCount: 2 });
});
