// The `tiny_lm` servable: a small byte-level language model (untrained, generated) served as
// MindSpore's incremental inference is: one model of two graphs, prefill and decode, driven by
// user code. Here the state (a static KV cache and the position) is declared, so the device
// actor keeps it per sequence, and the generation loop is a streaming stage: it yields text as
// it is made, and decode steps of all live generations on a device actor share batches.
//
//   generate: text_input (string) → text_output (string, streamed)
//   parameters: max_tokens (32), temperature (0 = greedy), top_k, top_p, seed, stop
//
// The model, tokenizer, sampling and loop live beside the servables (../tiny-lm-text.ts), where
// the tests and perf use the same code.
import { randomUUID } from 'node:crypto';
import { ServingError, register, tensorStrings, type StreamContext, type Tensor } from 'actorserve';
import { type GenerationParams, type TinyLmBackend, generateText, generationParams, prefillInputs, tinyLmState } from '../tiny-lm-text.js';

const PREFILL = 0;
const DECODE = 1;

const model = register.declareModel({
  modelFile: ['tiny_lm_prefill.onnx', 'tiny_lm_decode.onnx'],
  modelFormat: 'onnx',
  maxBatchSize: 32,
  sequence: { state: tinyLmState(), idleTimeoutMs: 60_000 },
});

function promptOf(text: Tensor): string {
  const strings = text.dtype === 'string' || text.dtype === 'bytes' ? tensorStrings(text) : undefined;
  if (strings?.length !== 1) throw new ServingError('E_INVALID_ARGUMENT', 'text_input must be one string');
  return strings[0]!;
}

function paramsOf(ctx: StreamContext): GenerationParams {
  try {
    return generationParams(ctx.parameters);
  } catch (err) {
    throw new ServingError('E_INVALID_ARGUMENT', (err as Error).message);
  }
}

/** Generates after the prompt: prefill, then one decode step per token, each a step of this generation's sequence. */
export async function* generate(text: Tensor, ctx: StreamContext): AsyncGenerator<string, void, undefined> {
  const prompt = promptOf(text);
  const params = paramsOf(ctx);
  const id = `tiny_lm-${randomUUID()}`;
  const logitsOf = ([logits]: Tensor[]) => logits!.data as Float32Array;
  const backend: TinyLmBackend = {
    prefill: async (ids) => {
      const { inputIds, attentionMask } = prefillInputs(ids);
      return logitsOf(await model.call([inputIds, attentionMask], { subgraph: PREFILL, sequence: { id, start: true } }));
    },
    decode: async (token) => logitsOf(await model.call([BigInt64Array.of(BigInt(token))], { subgraph: DECODE, sequence: { id } })),
  };
  try {
    yield* generateText(prompt, params, backend, ctx.signal);
  } finally {
    await model.endSequence(id); // frees the cache now (a no-op if the prefill never started it)
  }
}

register.method('generate', { outputs: ['text_output'] }, (text_input) => register.addStage(generate, [text_input], { stream: true }));
