// The `tiny_lm` example model: a small decoder-only transformer over bytes (tiny-lm-text.ts has
// its sizes, tokens and the generation loop), untrained but deterministic, exported as the two
// graphs of one model with a static KV cache, plus a plain-TS reference of the same network.
//
//   prefill: input_ids int64 [N, P] (right-padded with PAD), attention_mask int64 [N, P]
//            + state → logits float32 [N, V] at each row's last real token, state with the
//            cache filled at 0..len-1 and pos_next = len (a fresh sequence: it ignores pos).
//   decode:  input_ids int64 [N, 1] + state → logits [N, V], state with the token's k/v written
//            at pos and pos_next = pos + 1. The write is a one-hot select, Where(pos one-hot,
//            new, past): the cache keeps its fixed shape (rows at different positions share a
//            batch); it gives the blend past·(1 - h) + new·h exactly, in one op instead of three
//            (about 3x faster per decode step).
//            The attention mask over the cache (positions <= pos) is derived in the graph.
//   state (both graphs take and return it): past_k_{l} → present_k_{l}, past_v_{l} →
//            present_v_{l} float32 [N, H, T, D] for each layer l, and pos → pos_next int64 [N, 1].
//
// Each block: x + Attn(LN(x)), then x + FFN(LN(x)) (ReLU); a final LN, then logits = h Wout +
// bias. The bias favours lowercase letters and space (and gives EOS some weight), and Wout maps
// each letter's embedding towards letters of the other kind (vowel after consonant and back), so
// greedy text looks like words. Weights from mulberry32(TINY_LM_SEED).

import { OnnxGraphBuilder, attr } from './onnx-builder.js';
import { mulberry32 } from './prng.js';
import { BOS, EOS, PAD, TINY_LM } from './tiny-lm-text.js';

const { layers: L, dModel: DM, heads: H, headDim: HD, ffn: FF, context: T, promptWindow: P, vocab: V } = TINY_LM;
const LN_EPS = 1e-5;
const MASKED = -1e9;
export const TINY_LM_SEED = 1403;

export interface TinyLmLayerWeights {
  readonly ln1g: Float32Array;
  readonly ln1b: Float32Array;
  /** [DM, DM] each, row-major (x W). */
  readonly wq: Float32Array;
  readonly wk: Float32Array;
  readonly wv: Float32Array;
  readonly wo: Float32Array;
  readonly bq: Float32Array;
  readonly bk: Float32Array;
  readonly bv: Float32Array;
  readonly bo: Float32Array;
  readonly ln2g: Float32Array;
  readonly ln2b: Float32Array;
  /** [DM, FF] and [FF, DM]. */
  readonly w1: Float32Array;
  readonly b1: Float32Array;
  readonly w2: Float32Array;
  readonly b2: Float32Array;
}

export interface TinyLmWeights {
  /** [V, DM] and [T, DM]. */
  readonly tokEmb: Float32Array;
  readonly posEmb: Float32Array;
  readonly layers: readonly TinyLmLayerWeights[];
  readonly lnfg: Float32Array;
  readonly lnfb: Float32Array;
  /** [DM, V] and [V]. */
  readonly wout: Float32Array;
  readonly logitBias: Float32Array;
}

const LETTER_FREQ = 'etaoinshrdlcumwfgypbvkjxqz'; // most frequent first
const VOWELS = 'aeiouy';

/** The logit bias: letters by frequency, space, some EOS; other bytes and BOS/PAD unlikely. */
function logitBias(): Float32Array {
  const bias = new Float32Array(V);
  for (let b = 0; b < 256; b++) bias[b] = b >= 0x20 && b < 0x7f ? -3 : -6;
  for (let r = 0; r < LETTER_FREQ.length; r++) bias[LETTER_FREQ.charCodeAt(r)] = 2.5 - r * 0.08;
  bias[0x20] = 3;
  bias[EOS] = 1.6;
  bias[BOS] = -30;
  bias[PAD] = -30;
  return bias;
}

let cached: TinyLmWeights | undefined;

/** The model's weights (deterministic; computed once per process). */
export function tinyLmWeights(): TinyLmWeights {
  if (cached) return cached;
  const rand = mulberry32(TINY_LM_SEED);
  const uniform = (n: number, limit: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * limit);
  const around = (n: number, centre: number, spread: number) => Float32Array.from({ length: n }, () => centre + (rand() * 2 - 1) * spread);
  const tokEmb = uniform(V * DM, 1);
  const posEmb = uniform(T * DM, 0.3);
  const layerWeights = Array.from({ length: L }, (): TinyLmLayerWeights => ({
    ln1g: around(DM, 1, 0.1),
    ln1b: uniform(DM, 0.05),
    wq: uniform(DM * DM, Math.sqrt(3 / DM)),
    wk: uniform(DM * DM, Math.sqrt(3 / DM)),
    wv: uniform(DM * DM, Math.sqrt(3 / DM)),
    wo: uniform(DM * DM, Math.sqrt(3 / DM)),
    bq: uniform(DM, 0.02),
    bk: uniform(DM, 0.02),
    bv: uniform(DM, 0.02),
    bo: uniform(DM, 0.02),
    ln2g: around(DM, 1, 0.1),
    ln2b: uniform(DM, 0.05),
    w1: uniform(DM * FF, Math.sqrt(3 / DM)),
    b1: uniform(FF, 0.02),
    w2: uniform(FF * DM, Math.sqrt(3 / FF)),
    b2: uniform(DM, 0.02),
  }));
  const wout = uniform(DM * V, Math.sqrt(3 / DM) * 1.2);
  // letter alternation: the current token's embedding direction raises letters of the other kind
  const letters = ' abcdefghijklmnopqrstuvwxyz';
  for (const c of letters) {
    const from = c.charCodeAt(0);
    const row = tokEmb.subarray(from * DM, (from + 1) * DM);
    const norm2 = row.reduce((s, v) => s + v * v, 0);
    for (const d of letters) {
      const vowelAfterConsonant = VOWELS.includes(d) !== VOWELS.includes(c);
      const boost = c === ' ' ? (d === ' ' ? -3 : 0) : d === ' ' ? 0.3 : vowelAfterConsonant ? 1.2 : -0.6;
      const to = d.charCodeAt(0);
      for (let k = 0; k < DM; k++) wout[k * V + to]! += (boost * row[k]! * Math.sqrt(DM)) / norm2;
    }
  }
  cached = {
    tokEmb,
    posEmb,
    layers: layerWeights,
    lnfg: around(DM, 1, 0.1),
    lnfb: uniform(DM, 0.05),
    wout,
    logitBias: logitBias(),
  };
  return cached;
}

/** Adds the weights shared by both graphs as initializers, and the state inputs/outputs. */
function commonGraph(name: string, batch: string): OnnxGraphBuilder {
  const w = tinyLmWeights();
  const b = new OnnxGraphBuilder(name)
    .addInitializer('tok_emb', 'float32', [V, DM], w.tokEmb)
    .addInitializer('pos_emb', 'float32', [T, DM], w.posEmb)
    .addInitializer('lnf_g', 'float32', [DM], w.lnfg)
    .addInitializer('lnf_b', 'float32', [DM], w.lnfb)
    .addInitializer('wout', 'float32', [DM, V], w.wout)
    .addInitializer('logit_bias', 'float32', [V], w.logitBias)
    .addInitializer('heads_shape', 'int64', [4], BigInt64Array.of(0n, 0n, BigInt(H), BigInt(HD)))
    .addInitializer('model_shape', 'int64', [3], BigInt64Array.of(0n, 0n, BigInt(DM)))
    .addInitializer('logits_shape', 'int64', [2], BigInt64Array.of(0n, BigInt(V)))
    .addInitializer('scale', 'float32', [], Float32Array.of(1 / Math.sqrt(HD)))
    .addInitializer('one_i', 'int64', [], BigInt64Array.of(1n))
    .addInitializer('masked', 'float32', [], Float32Array.of(MASKED));
  w.layers.forEach((lw, l) => {
    b.addInitializer(`ln1_g_${l}`, 'float32', [DM], lw.ln1g)
      .addInitializer(`ln1_b_${l}`, 'float32', [DM], lw.ln1b)
      .addInitializer(`wq_${l}`, 'float32', [DM, DM], lw.wq)
      .addInitializer(`wk_${l}`, 'float32', [DM, DM], lw.wk)
      .addInitializer(`wv_${l}`, 'float32', [DM, DM], lw.wv)
      .addInitializer(`wo_${l}`, 'float32', [DM, DM], lw.wo)
      .addInitializer(`bq_${l}`, 'float32', [DM], lw.bq)
      .addInitializer(`bk_${l}`, 'float32', [DM], lw.bk)
      .addInitializer(`bv_${l}`, 'float32', [DM], lw.bv)
      .addInitializer(`bo_${l}`, 'float32', [DM], lw.bo)
      .addInitializer(`ln2_g_${l}`, 'float32', [DM], lw.ln2g)
      .addInitializer(`ln2_b_${l}`, 'float32', [DM], lw.ln2b)
      .addInitializer(`w1_${l}`, 'float32', [DM, FF], lw.w1)
      .addInitializer(`b1_${l}`, 'float32', [FF], lw.b1)
      .addInitializer(`w2_${l}`, 'float32', [FF, DM], lw.w2)
      .addInitializer(`b2_${l}`, 'float32', [DM], lw.b2);
  });
  for (let l = 0; l < L; l++) {
    b.addInput(`past_k_${l}`, 'float32', [batch, H, T, HD]).addInput(`past_v_${l}`, 'float32', [batch, H, T, HD]);
  }
  b.addInput('pos', 'int64', [batch, 1]);
  return b;
}

/** `x @ W + bias` → name. */
function linear(b: OnnxGraphBuilder, x: string, w: string, bias: string, out: string): string {
  b.addNode('MatMul', [x, w], [`${out}_mm`]).addNode('Add', [`${out}_mm`, bias], [out]);
  return out;
}

/** [N, S, DM] → [N, H, S, HD]. */
function splitHeads(b: OnnxGraphBuilder, x: string): string {
  b.addNode('Reshape', [x, 'heads_shape'], [`${x}_r`]).addNode('Transpose', [`${x}_r`], [`${x}_h`], { attributes: { perm: attr.ints([0, 2, 1, 3]) } });
  return `${x}_h`;
}

/**
 * One transformer block on x [N, S, DM]. `attend(l, q, k, v)` returns the attention output
 * [N, H, S, HD] given the block's q, k, v [N, H, S, HD] (and writes its present k/v).
 */
function block(b: OnnxGraphBuilder, l: number, x: string, attend: (q: string, k: string, v: string) => string): string {
  const ln = (input: string, which: 1 | 2, out: string) =>
    b.addNode('LayerNormalization', [input, `ln${which}_g_${l}`, `ln${which}_b_${l}`], [out], { attributes: { axis: attr.int(-1), epsilon: attr.float(LN_EPS) } });
  ln(x, 1, `h1_${l}`);
  const q = splitHeads(b, linear(b, `h1_${l}`, `wq_${l}`, `bq_${l}`, `q_${l}`));
  const k = splitHeads(b, linear(b, `h1_${l}`, `wk_${l}`, `bk_${l}`, `k_${l}`));
  const v = splitHeads(b, linear(b, `h1_${l}`, `wv_${l}`, `bv_${l}`, `v_${l}`));
  const o = attend(q, k, v);
  b.addNode('Transpose', [o], [`o_t_${l}`], { attributes: { perm: attr.ints([0, 2, 1, 3]) } }).addNode('Reshape', [`o_t_${l}`, 'model_shape'], [`o_m_${l}`]);
  linear(b, `o_m_${l}`, `wo_${l}`, `bo_${l}`, `attn_${l}`);
  b.addNode('Add', [x, `attn_${l}`], [`x_a_${l}`]);
  ln(`x_a_${l}`, 2, `h2_${l}`);
  linear(b, `h2_${l}`, `w1_${l}`, `b1_${l}`, `f1_${l}`);
  b.addNode('Relu', [`f1_${l}`], [`f1r_${l}`]);
  linear(b, `f1r_${l}`, `w2_${l}`, `b2_${l}`, `f2_${l}`);
  b.addNode('Add', [`x_a_${l}`, `f2_${l}`], [`x_${l + 1}`]);
  return `x_${l + 1}`;
}

/** softmax(q kᵀ · scale + bias) v, for q [N,H,S,HD], keys/values [N,H,K,HD], bias broadcastable to [N,H,S,K]. */
function attention(b: OnnxGraphBuilder, l: number, q: string, keys: string, values: string, bias: string): string {
  b.addNode('Transpose', [keys], [`kt_${l}`], { attributes: { perm: attr.ints([0, 1, 3, 2]) } })
    .addNode('MatMul', [q, `kt_${l}`], [`s_${l}`])
    .addNode('Mul', [`s_${l}`, 'scale'], [`ss_${l}`])
    .addNode('Add', [`ss_${l}`, bias], [`sb_${l}`])
    .addNode('Softmax', [`sb_${l}`], [`p_${l}`], { attributes: { axis: attr.int(-1) } })
    .addNode('MatMul', [`p_${l}`, values], [`o_${l}`]);
  return `o_${l}`;
}

/** Final layer norm and the output projection of h [N, 1, DM] → logits [N, V]. */
function head(b: OnnxGraphBuilder, h: string, batch: string): void {
  b.addNode('LayerNormalization', [h, 'lnf_g', 'lnf_b'], ['hf'], { attributes: { axis: attr.int(-1), epsilon: attr.float(LN_EPS) } });
  linear(b, 'hf', 'wout', 'logit_bias', 'logits3');
  b.addNode('Reshape', ['logits3', 'logits_shape'], ['logits']).addOutput('logits', 'float32', [batch, V]);
}

function stateOutputs(b: OnnxGraphBuilder, batch: string): void {
  for (let l = 0; l < L; l++) {
    b.addOutput(`present_k_${l}`, 'float32', [batch, H, T, HD]).addOutput(`present_v_${l}`, 'float32', [batch, H, T, HD]);
  }
  b.addOutput('pos_next', 'int64', [batch, 1]);
}

/** The prefill graph (see the file comment); `batch` names the dynamic batch dim. */
export function tinyLmPrefillModel(batch = 'N'): Uint8Array {
  const b = commonGraph('tiny_lm_prefill', batch)
    .addInput('input_ids', 'int64', [batch, P])
    .addInput('attention_mask', 'int64', [batch, P])
    .addInitializer('one_f', 'float32', [], Float32Array.of(1))
    .addInitializer('causal', 'float32', [P, P], Float32Array.from({ length: P * P }, (_, i) => (i % P <= Math.floor(i / P) ? 0 : MASKED)))
    .addInitializer('prompt_start', 'int64', [1], BigInt64Array.of(0n))
    .addInitializer('prompt_end', 'int64', [1], BigInt64Array.of(BigInt(P)))
    .addInitializer('cache_end', 'int64', [1], BigInt64Array.of(BigInt(T)))
    .addInitializer('axis0', 'int64', [1], BigInt64Array.of(0n))
    .addInitializer('axis1', 'int64', [1], BigInt64Array.of(1n))
    .addInitializer('axis2', 'int64', [1], BigInt64Array.of(2n))
    .addInitializer('axes12', 'int64', [2], BigInt64Array.of(1n, 2n))
    .addInitializer('axes13', 'int64', [2], BigInt64Array.of(1n, 3n))
    .addInitializer('positions_p', 'int64', [P], BigInt64Array.from({ length: P }, (_, i) => BigInt(i)))
    // embeddings: tokens + the first P positions
    .addNode('Gather', ['tok_emb', 'input_ids'], ['tok'])
    .addNode('Slice', ['pos_emb', 'prompt_start', 'prompt_end', 'axis0'], ['pos_p'])
    .addNode('Add', ['tok', 'pos_p'], ['x_0'])
    // attention bias [N, 1, P, P]: causal, and padded keys masked
    .addNode('Cast', ['attention_mask'], ['mask_f'], { attributes: { to: attr.int(1) } })
    .addNode('Sub', ['one_f', 'mask_f'], ['unmask_f'])
    .addNode('Mul', ['unmask_f', 'masked'], ['key_bias'])
    .addNode('Unsqueeze', ['key_bias', 'axes12'], ['key_bias4'])
    .addNode('Add', ['key_bias4', 'causal'], ['bias'])
    .addNode('Unsqueeze', ['mask_f', 'axes13'], ['mask4']);
  let x = 'x_0';
  for (let l = 0; l < L; l++) {
    x = block(b, l, x, (q, k, v) => {
      // present = the prompt's k/v (zero at padding) followed by the untouched rest of the cache
      for (const [kind, value] of [['k', k], ['v', v]] as const) {
        b.addNode('Mul', [value, 'mask4'], [`${kind}_masked_${l}`])
          .addNode('Slice', [`past_${kind}_${l}`, 'prompt_end', 'cache_end', 'axis2'], [`${kind}_rest_${l}`])
          .addNode('Concat', [`${kind}_masked_${l}`, `${kind}_rest_${l}`], [`present_${kind}_${l}`], { attributes: { axis: attr.int(2) } });
      }
      return attention(b, l, q, k, v, 'bias');
    });
  }
  // each row's last real token: a one-hot over the window picks its hidden state
  b.addNode('ReduceSum', ['attention_mask', 'axis1'], ['pos_next'], { attributes: { keepdims: attr.int(1) } })
    .addNode('Sub', ['pos_next', 'one_i'], ['last'])
    .addNode('Equal', ['positions_p', 'last'], ['last_oh_b'])
    .addNode('Cast', ['last_oh_b'], ['last_oh'], { attributes: { to: attr.int(1) } })
    .addNode('Unsqueeze', ['last_oh', 'axis1'], ['last_oh3'])
    .addNode('MatMul', ['last_oh3', x], ['h_last']);
  head(b, 'h_last', batch);
  stateOutputs(b, batch);
  return b.toBytes();
}

/** The decode graph (see the file comment); `batch` names the dynamic batch dim. */
export function tinyLmDecodeModel(batch = 'N'): Uint8Array {
  const b = commonGraph('tiny_lm_decode', batch)
    .addInput('input_ids', 'int64', [batch, 1])
    .addInitializer('positions_t', 'int64', [T], BigInt64Array.from({ length: T }, (_, i) => BigInt(i)))
    .addInitializer('axes12', 'int64', [2], BigInt64Array.of(1n, 2n))
    .addInitializer('axes13', 'int64', [2], BigInt64Array.of(1n, 3n))
    .addInitializer('zero_f', 'float32', [], Float32Array.of(0))
    .addNode('Gather', ['tok_emb', 'input_ids'], ['tok'])
    .addNode('Gather', ['pos_emb', 'pos'], ['pos_e'])
    .addNode('Add', ['tok', 'pos_e'], ['x_0'])
    // where this token goes in the cache (one-hot [N, 1, T, 1]) and what it may attend to (<= pos)
    .addNode('Equal', ['positions_t', 'pos'], ['at_b'])
    .addNode('Unsqueeze', ['at_b', 'axes13'], ['at4'])
    .addNode('Greater', ['positions_t', 'pos'], ['future_b'])
    .addNode('Where', ['future_b', 'masked', 'zero_f'], ['future_bias'])
    .addNode('Unsqueeze', ['future_bias', 'axes12'], ['bias'])
    .addNode('Add', ['pos', 'one_i'], ['pos_next']);
  let x = 'x_0';
  for (let l = 0; l < L; l++) {
    x = block(b, l, x, (q, k, v) => {
      for (const [kind, value] of [['k', k], ['v', v]] as const) {
        b.addNode('Where', ['at4', value, `past_${kind}_${l}`], [`present_${kind}_${l}`]);
      }
      return attention(b, l, q, `present_k_${l}`, `present_v_${l}`, 'bias');
    });
  }
  head(b, x, batch);
  stateOutputs(b, batch);
  return b.toBytes();
}

// ---------------------------------------------------------------------------------------------
// The plain-TS reference: the same network, no cache, every position recomputed (float64 sums).

function layerNorm(x: Float64Array, g: Float32Array, bias: Float32Array): Float64Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) * (v - mean);
  variance /= x.length;
  const inv = 1 / Math.sqrt(variance + LN_EPS);
  return x.map((v, i) => (v - mean) * inv * g[i]! + bias[i]!);
}

/** x [in] @ W [in, out] + bias [out]. */
function matVec(x: Float64Array, w: Float32Array, bias: Float32Array, out: number): Float64Array {
  const y = Float64Array.from(bias);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!;
    if (xi === 0) continue;
    for (let j = 0; j < out; j++) y[j]! += xi * w[i * out + j]!;
  }
  return y;
}

/**
 * The reference's logits [V] after the tokens `ids` (1 to T of them): the full causal network
 * over every position, recomputed from scratch (no cache), as the ONNX graphs must give.
 */
export function tinyLmReferenceLogits(ids: readonly number[]): Float32Array {
  if (ids.length < 1 || ids.length > T) throw new RangeError(`the reference takes 1 to ${T} tokens, got ${ids.length}`);
  const w = tinyLmWeights();
  let xs = ids.map((id, p) => Float64Array.from({ length: DM }, (_, k) => w.tokEmb[id * DM + k]! + w.posEmb[p * DM + k]!));
  for (const lw of w.layers) {
    const h = xs.map((x) => layerNorm(x, lw.ln1g, lw.ln1b));
    const q = h.map((v) => matVec(v, lw.wq, lw.bq, DM));
    const k = h.map((v) => matVec(v, lw.wk, lw.bk, DM));
    const v = h.map((u) => matVec(u, lw.wv, lw.bv, DM));
    xs = xs.map((x, i) => {
      const attn = new Float64Array(DM);
      for (let head = 0; head < H; head++) {
        const off = head * HD;
        const scores = Array.from({ length: i + 1 }, (_, j) => {
          let s = 0;
          for (let d = 0; d < HD; d++) s += q[i]![off + d]! * k[j]![off + d]!;
          return s / Math.sqrt(HD);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const total = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j <= i; j++) for (let d = 0; d < HD; d++) attn[off + d]! += (e[j]! / total) * v[j]![off + d]!;
      }
      const after = matVec(attn, lw.wo, lw.bo, DM).map((o, c) => o + x[c]!);
      const f = matVec(layerNorm(after, lw.ln2g, lw.ln2b), lw.w1, lw.b1, FF).map((u) => Math.max(0, u));
      return matVec(f, lw.w2, lw.b2, DM).map((o, c) => o + after[c]!);
    });
  }
  return Float32Array.from(matVec(layerNorm(xs[xs.length - 1]!, w.lnfg, w.lnfb), w.wout, w.logitBias, V));
}

/** The reference as a generation backend (tiny-lm-text.ts's loop): it recomputes everything each token. */
export function tinyLmReferenceBackend(): { prefill(ids: readonly number[]): Promise<Float32Array>; decode(id: number): Promise<Float32Array> } {
  let tokens: number[] = [];
  return {
    prefill: (ids) => {
      tokens = [...ids];
      return Promise.resolve(tinyLmReferenceLogits(tokens));
    },
    decode: (id) => {
      tokens.push(id);
      return Promise.resolve(tinyLmReferenceLogits(tokens));
    },
  };
}
