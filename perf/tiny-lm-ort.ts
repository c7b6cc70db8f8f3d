/**
 * The `tiny_lm` model run with onnxruntime-node directly (no engine): its two sessions, batched
 * prefill/decode steps that carry the KV-cache state from one step to the next, a one-sequence
 * generation backend, and the plain loop the engine is measured against (perf/tiny-lm.ts):
 * prompts one at a time, each prefill then decode steps. The tests compare its logits against
 * the plain-TS reference (servables/tiny-lm.ts).
 */
import * as ort from 'onnxruntime-node';
import { tinyLmDecodeModel, tinyLmPrefillModel } from '../servables/tiny-lm.js';
import { type GenerationParams, TINY_LM, type TinyLmBackend, generateText, prefillInputs, tinyLmState } from '../servables/tiny-lm-text.js';

const { layers: L, heads: H, context: T, headDim: HD, promptWindow: P, vocab: V } = TINY_LM;

/** The state of a batch of sequences between steps: the graphs' state outputs, by state input name. */
export type TinyLmOrtState = Readonly<Record<string, ort.Tensor>>;

/** A step's result: logits per row, and the state for the next step. */
export interface TinyLmStep {
  readonly logits: Float32Array[];
  readonly state: TinyLmOrtState;
}

export class TinyLmOrt {
  private constructor(
    private readonly prefillSession: ort.InferenceSession,
    private readonly decodeSession: ort.InferenceSession,
  ) {}

  /** Builds both graphs in memory and opens a session on each (one intra-op thread unless told otherwise). */
  static async create(options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1 }): Promise<TinyLmOrt> {
    const [prefill, decode] = await Promise.all([
      ort.InferenceSession.create(tinyLmPrefillModel(), options),
      ort.InferenceSession.create(tinyLmDecodeModel(), options),
    ]);
    return new TinyLmOrt(prefill, decode);
  }

  /** Starts one sequence per prompt (token ids, BOS first), right-padded into one batch. */
  async prefill(prompts: readonly (readonly number[])[]): Promise<TinyLmStep> {
    const B = prompts.length;
    const ids = new BigInt64Array(B * P);
    const mask = new BigInt64Array(B * P);
    prompts.forEach((p, b) => {
      const { inputIds, attentionMask } = prefillInputs(p);
      ids.set(inputIds, b * P);
      mask.set(attentionMask, b * P);
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, [B, P]),
      attention_mask: new ort.Tensor('int64', mask, [B, P]),
      pos: new ort.Tensor('int64', new BigInt64Array(B), [B, 1]),
    };
    for (let l = 0; l < L; l++) {
      for (const kind of ['k', 'v']) feeds[`past_${kind}_${l}`] = new ort.Tensor('float32', new Float32Array(B * H * T * HD), [B, H, T, HD]);
    }
    return step(await this.prefillSession.run(feeds), B);
  }

  /** Feeds one token per sequence of the batch `state` (rows in the same order). */
  async decode(tokens: readonly number[], state: TinyLmOrtState): Promise<TinyLmStep> {
    const feeds: Record<string, ort.Tensor> = { ...state, input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [tokens.length, 1]) };
    return step(await this.decodeSession.run(feeds), tokens.length);
  }

  /** A generation backend for one sequence at a time (tiny-lm-text.ts's loop). */
  backend(): TinyLmBackend {
    let state: TinyLmOrtState | undefined;
    return {
      prefill: async (ids) => {
        const out = await this.prefill([ids]);
        state = out.state;
        return out.logits[0]!;
      },
      decode: async (id) => {
        if (!state) throw new Error('decode before prefill');
        const out = await this.decode([id], state);
        state = out.state;
        return out.logits[0]!;
      },
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.prefillSession.release(), this.decodeSession.release()]);
  }
}

function step(out: ort.InferenceSession.OnnxValueMapType, rows: number): TinyLmStep {
  const logits = out.logits!.data as Float32Array;
  const state: Record<string, ort.Tensor> = {};
  for (const s of tinyLmState()) state[s.input] = out[s.output]!;
  return { logits: Array.from({ length: rows }, (_, b) => logits.slice(b * V, (b + 1) * V)), state };
}

/** One generation by the plain loop: its text and ms from its start to each emitted piece. */
export interface PlainGeneration {
  readonly text: string;
  readonly pieceTimesMs: readonly number[];
}

/**
 * The baseline: generates after each prompt in turn, one sequence at a time (prefill, then one
 * decode step per token), straight on onnxruntime-node.
 */
export async function plainLoop(lm: TinyLmOrt, prompts: readonly string[], params: GenerationParams): Promise<PlainGeneration[]> {
  const results: PlainGeneration[] = [];
  for (const prompt of prompts) {
    const t0 = performance.now();
    const pieceTimesMs: number[] = [];
    let text = '';
    for await (const piece of generateText(prompt, params, lm.backend())) {
      text += piece;
      pieceTimesMs.push(performance.now() - t0);
    }
    results.push({ text, pieceTimesMs });
  }
  return results;
}
