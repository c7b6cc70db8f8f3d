// The `tiny_lm` example's model and text side, without the engine: the generated prefill and
// decode graphs run on onnxruntime-node directly give the plain-TS reference's logits (no cache,
// full recompute) step after step; a batch of prompts of different lengths gives each row's
// logits as alone; the tokenizer, streaming UTF-8 decoding, stop strings and seeded sampling.
import t from 'tap';
import { tinyLmReferenceBackend, tinyLmReferenceLogits } from '../../dist/servables/tiny-lm.js';
import {
  BOS,
  EOS,
  type GenerationParams,
  StopMatcher,
  TINY_LM,
  Utf8Stream,
  decodeTokens,
  encodePrompt,
  generateText,
  generationParams,
  sampleToken,
} from '../../dist/servables/tiny-lm-text.js';
import { TinyLmOrt } from '../../dist/perf/tiny-lm-ort.js';
import { mulberry32 } from '../../dist/servables/prng.js';

const lm = await TinyLmOrt.create();
t.teardown(() => lm.release());

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

async function collect(pieces: AsyncIterable<string>): Promise<string> {
  let text = '';
  for await (const piece of pieces) text += piece;
  return text;
}

const greedy = (over: Partial<GenerationParams> = {}): GenerationParams => ({ ...generationParams({}), ...over });

t.test('prefill then decode steps give the reference logits (1e-4) at every step', async (t) => {
  const tokens = encodePrompt('hello world');
  let step = await lm.prefill([tokens]);
  t.equal(step.logits[0]!.length, TINY_LM.vocab);
  t.ok(maxDiff(step.logits[0]!, tinyLmReferenceLogits(tokens)) < 1e-4, 'prefill');
  t.same(Array.from(step.state.pos!.data as BigInt64Array), [BigInt(tokens.length)], 'pos_next = prompt length');
  for (let s = 0; s < 8; s++) {
    // alternate the greedy token and a forced one, so the cache sees tokens the model would not pick
    const next = s % 2 === 0 ? argmax(step.logits[0]!) : 'xyz é'.charCodeAt(s % 5) & 0xff;
    tokens.push(next);
    step = await lm.decode([next], step.state);
    const diff = maxDiff(step.logits[0]!, tinyLmReferenceLogits(tokens));
    t.ok(diff < 1e-4, `decode step ${s + 1}: max |ORT - reference| = ${diff.toExponential(2)}`);
  }
  t.same(Array.from(step.state.pos!.data as BigInt64Array), [BigInt(tokens.length)], 'pos advanced once per step');
});

t.test('a batch of prompts of different lengths gives each row the logits it gets alone', async (t) => {
  const prompts = ['', 'a', 'The quick brown fox', 'x'.repeat(40), 'long '.repeat(30)].map(encodePrompt);
  t.same(prompts.map((p) => p.length), [1, 2, 20, 41, TINY_LM.promptWindow], 'lengths from BOS only to a full window');
  let batch = await lm.prefill(prompts);
  let alone = await Promise.all(prompts.map((p) => lm.prefill([p])));
  const history = prompts.map((p) => [...p]);
  for (let s = 0; s <= 3; s++) {
    prompts.forEach((_, b) => {
      t.ok(maxDiff(batch.logits[b]!, alone[b]!.logits[0]!) < 1e-5, `step ${s}, row ${b}: batched = alone`);
      t.ok(maxDiff(batch.logits[b]!, tinyLmReferenceLogits(history[b]!)) < 1e-4, `step ${s}, row ${b}: = reference`);
    });
    const next = batch.logits.map(argmax);
    next.forEach((id, b) => history[b]!.push(id));
    [batch, alone] = await Promise.all([lm.decode(next, batch.state), Promise.all(next.map((id, b) => lm.decode([id], alone[b]!.state)))]);
  }
});

t.test('greedy generation on ORT is the reference greedy continuation', async (t) => {
  for (const prompt of ['hello world', 'Once upon a time']) {
    const params = greedy({ maxTokens: 24 });
    const [viaOrt, viaReference] = await Promise.all([collect(generateText(prompt, params, lm.backend())), collect(generateText(prompt, params, tinyLmReferenceBackend()))]);
    t.equal(viaOrt, viaReference, `${JSON.stringify(prompt)} → ${JSON.stringify(viaOrt)}`);
    t.ok(viaOrt.length > 0, 'some text');
    t.match(viaOrt, /^[a-z ]*$/, 'greedy text is lowercase letters and spaces (the logit bias)');
  }
});

t.test('the generation stops at max_tokens and at the end of the context', async (t) => {
  t.equal(Buffer.byteLength(await collect(generateText('hello world', greedy({ maxTokens: 5 }), lm.backend()))), 5, '5 tokens, one byte each');
  // after 'abc' the greedy model says one byte and then EOS: the generation ends there
  const first = await lm.prefill([encodePrompt('abc')]);
  const byte = argmax(first.logits[0]!);
  t.equal(argmax((await lm.decode([byte], first.state)).logits[0]!), EOS, 'EOS is the second greedy token');
  t.equal(await collect(generateText('abc', greedy(), lm.backend())), String.fromCharCode(byte), 'the text ends at EOS');
  // a full window (64 tokens) leaves 128 - 64 + 1 tokens before the cache is full
  const full = await collect(generateText('z'.repeat(100), greedy({ maxTokens: 1000 }), lm.backend()));
  t.equal(Buffer.byteLength(full), TINY_LM.context - TINY_LM.promptWindow + 1, 'the tokens that fit');
});

t.test('seeded sampling is deterministic, and differs between seeds', async (t) => {
  const params = (seed: number) => generationParams({ temperature: 0.9, top_k: 40, top_p: 0.95, seed, max_tokens: 40 });
  const a = await collect(generateText('hello', params(7), lm.backend()));
  const b = await collect(generateText('hello', params(7), lm.backend()));
  t.equal(a, b, 'same seed, same text');
  const others = await Promise.all([8, 9, 10].map((seed) => collect(generateText('hello', params(seed), lm.backend()))));
  t.ok(others.some((o) => o !== a), `other seeds give other text: ${JSON.stringify([a, ...others])}`);
  const greedyText = await collect(generateText('hello', greedy({ maxTokens: 40 }), lm.backend()));
  t.equal(await collect(generateText('hello', generationParams({ top_k: 1, seed: 3, max_tokens: 40 }), lm.backend())), greedyText, 'top_k 1 = greedy');
});

t.test('sampleToken: greedy, top-k, top-p and temperature', async (t) => {
  const logits = Float32Array.of(0, Math.log(2), Math.log(4), Math.log(1), -Infinity);
  t.equal(sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, () => t.fail('greedy draws nothing') as never), 2);
  const counts = (opts: { temperature: number; topK: number; topP: number }) => {
    const rand = mulberry32(5);
    const n = [0, 0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) n[sampleToken(logits, opts, rand)]!++;
    return n;
  };
  const plain = counts({ temperature: 1, topK: 0, topP: 1 }); // probabilities 1/8, 2/8, 4/8, 1/8, 0
  t.equal(plain[4], 0, 'a -Infinity logit is never drawn');
  t.ok(Math.abs(plain[2]! / 4000 - 0.5) < 0.05 && Math.abs(plain[1]! / 4000 - 0.25) < 0.05, `frequencies follow the softmax: ${plain.join()}`);
  const top2 = counts({ temperature: 1, topK: 2, topP: 1 });
  t.same([top2[0], top2[3], top2[4]], [0, 0, 0], `top_k 2 keeps tokens 2 and 1 only: ${top2.join()}`);
  const nucleus = counts({ temperature: 1, topK: 0, topP: 0.7 }); // 4/8 then 2/8 reach 0.7
  t.same([nucleus[0], nucleus[3]], [0, 0], `top_p 0.7 keeps tokens 2 and 1 only: ${nucleus.join()}`);
  const cold = counts({ temperature: 0.05, topK: 0, topP: 1 });
  t.equal(cold[2], 4000, 'a low temperature is almost greedy');
});

t.test('stop strings cut the text before the first stop, and no part of a stop string is emitted', async (t) => {
  const run = (stops: string[], pieces: string[]) => {
    const m = new StopMatcher(stops);
    const out: string[] = [];
    for (const p of pieces) {
      const r = m.push(p);
      out.push(r.text);
      if (r.stopped) return { out, stopped: true };
    }
    out.push(m.flush());
    return { out, stopped: false };
  };
  t.same(run(['END'], ['ab', 'cE', 'N', 'Dxyz']), { out: ['ab', 'c', '', ''], stopped: true }, 'held back across pieces');
  t.same(run(['END'], ['ab', 'cE', 'N', 'x']), { out: ['ab', 'c', '', 'ENx', ''], stopped: false }, 'released when it turns out not to be a stop');
  t.same(run(['cd', 'b'], ['abcd']), { out: ['a'], stopped: true }, 'the earliest stop wins');
  t.same(run(['aab'], ['x', 'a', 'a', 'a', 'b']), { out: ['x', '', '', 'a', ''], stopped: true }, 'overlapping prefixes');
  t.same(run(['ab'], ['xyz']), { out: ['xyz', ''], stopped: false }, 'no stop, nothing held');
  t.same(run([''], ['xyz']), { out: ['xyz', ''], stopped: false }, 'empty stop strings are ignored');

  const full = await collect(generateText('hello world', greedy({ maxTokens: 30 }), lm.backend()));
  const stop = full.slice(6, 9);
  const cut = await collect(generateText('hello world', greedy({ maxTokens: 30, stop: ['qqq', stop] }), lm.backend()));
  t.equal(cut, full.slice(0, full.indexOf(stop)), `generation with stop ${JSON.stringify(stop)} ends before it`);
});

t.test('tokenizer: BOS then UTF-8 bytes, round trip, streaming decode, truncation', async (t) => {
  for (const text of ['', 'hello', 'é漢字 🙂 done', '\u0000\n\t']) {
    const ids = encodePrompt(text);
    t.equal(ids[0], BOS);
    t.same(ids.slice(1), [...Buffer.from(text, 'utf8')], `bytes of ${JSON.stringify(text)}`);
    t.equal(decodeTokens(ids), text, 'round trip (BOS dropped)');
    const stream = new Utf8Stream();
    const pieces = ids.slice(1).map((b) => stream.push(b));
    t.equal(pieces.join('') + stream.end(), text, 'byte-by-byte streaming decode');
    t.ok(pieces.every((p) => !p.includes('\uFFFD')), 'no replacement character mid-character');
  }
  const stream = new Utf8Stream();
  t.equal(stream.push(0xe6), '', 'an incomplete character waits');
  t.equal(stream.end(), '\uFFFD', 'and becomes U+FFFD at the end');
  t.equal(decodeTokens([BOS, 104, 105, EOS]), 'hi', 'special tokens are dropped');
  const long = encodePrompt('0123456789'.repeat(10));
  t.equal(long.length, TINY_LM.promptWindow, 'a long prompt fills the window');
  t.equal(decodeTokens(long), '0123456789'.repeat(10).slice(-(TINY_LM.promptWindow - 1)), 'keeping its last bytes');
});

t.test('generationParams: defaults, numeric strings, a JSON list of stops, and refusals', async (t) => {
  const d = generationParams({});
  t.match(d, { maxTokens: 32, temperature: 0, topK: 0, topP: 1, stop: [] });
  t.ok(Number.isInteger(d.seed), 'a random seed when none is given');
  t.match(generationParams({ max_tokens: '7', top_p: 0.5, seed: '42', stop: 'x' }), { maxTokens: 7, temperature: 1, topP: 0.5, seed: 42, stop: ['x'] });
  t.match(generationParams({ stop: '["a","b"]' }), { stop: ['a', 'b'] });
  t.match(generationParams({ stop: '[not json' }), { stop: ['[not json'] });
  t.match(generationParams({ other: true }), { maxTokens: 32 }, 'unknown parameters are ignored');
  t.throws(() => generationParams({ max_tokens: 0 }), /max_tokens must be an integer >= 1, got 0/);
  t.throws(() => generationParams({ temperature: -1 }), /temperature/);
  t.throws(() => generationParams({ top_p: 0 }), /top_p/);
  t.throws(() => generationParams({ top_k: 1.5 }), /top_k/);
  t.throws(() => generationParams({ seed: 'abc' }), /seed must be an integer/);
  t.throws(() => generationParams({ stop: true }), /stop must be a string/);
});
