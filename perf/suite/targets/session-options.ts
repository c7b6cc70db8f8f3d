/**
 * The ONNX Runtime session options of the suite's baselines (Fastify + onnxruntime-node and the
 * raw loop): those of actorserve's device actors on the CPU (actors/device-actor.ts), so every
 * target runs the models alike.
 */
import type * as ort from 'onnxruntime-node';

export function baselineSessionOptions(intraOpThreads: number): ort.InferenceSession.SessionOptions {
  return { intraOpNumThreads: intraOpThreads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
}
