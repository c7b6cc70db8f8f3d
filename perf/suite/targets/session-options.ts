/**
 * What the suite's baselines (Fastify + onnxruntime-node and the raw loop) share: their model
 * arguments, and the ONNX Runtime session options of actorserve's device actors on the CPU
 * (actors/device-actor.ts), so every target runs the models alike.
 */
import type * as ort from 'onnxruntime-node';

export function baselineSessionOptions(intraOpThreads: number): ort.InferenceSession.SessionOptions {
  return { intraOpNumThreads: intraOpThreads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
}

/** parseArgs options both baselines take: the three model files and the intra-op threads. */
export const MODEL_ARGS = {
  add: { type: 'string' },
  mlp: { type: 'string' },
  resnet: { type: 'string' },
  'intra-op-threads': { type: 'string', default: '1' },
} as const;
