// Streaming stages (StageOptions.stream) and inferStream: an async generator stage on a real
// stage thread streams its partial results to the reader, with credit-based back-pressure,
// cancellation (signal, return(), deadline) that stops the generator, and unary calls that
// join the partials.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ServingError } from '../../dist/engine/errors.js';
import { tensorStrings } from '../../dist/engine/tensor.js';
import type { StreamEvent } from '../../dist/engine/inference.js';
import { STREAM_CREDIT } from '../../dist/actors/stage-protocol.js';
import { addModel } from '../../dist/servables/example-models.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('streaming');
fx.config(
  'stream',
  `import { register, ServingError, type StreamContext, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
/** What the generators did, read through the 'counters' method (one stage thread: the same module). */
const state = { yielded: 0, cleaned: 0, lastSignalAborted: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Yields n[0] strings '<prefix><i>' (ctx.parameters.prefix, default 'w'), ctx.parameters.delayMs apart. */
export async function* words(n: Tensor, ctx: StreamContext) {
  const count = (n.data as Float32Array)[0]!;
  const prefix = String(ctx.parameters.prefix ?? 'w');
  try {
    for (let i = 0; i < count; i++) {
      if (ctx.parameters.delayMs) await sleep(Number(ctx.parameters.delayMs));
      state.yielded++;
      yield prefix + i;
    }
  } finally {
    state.cleaned++;
    state.lastSignalAborted = ctx.signal.aborted;
  }
}

/** Each step adds ones to y through model.call and yields the sum. */
export async function* steps(y: Tensor, ctx: StreamContext) {
  const ones = { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 1, 1, 1) } as const;
  let x = y;
  for (let i = 0; i < Number(ctx.parameters.steps ?? 3); i++) {
    [x] = await model.call([x, ones]);
    yield x!;
  }
}

/** Yields 'a' and 'b', then fails. */
export async function* failing(_n: Tensor) {
  yield 'a';
  yield 'b';
  throw new ServingError('E_STAGE_FAILED', 'boom after two');
}

/** Two outputs per step: a string and its index as a float32 [1]. */
export async function* pairs(n: Tensor) {
  for (let i = 0; i < (n.data as Float32Array)[0]!; i++) yield ['p' + i, Float32Array.of(i)];
}

/** Yields something that is not a tensor. */
export async function* bad(_n: Tensor) {
  yield 'fine';
  yield { not: 'a tensor' };
}

export function counters(_x: Tensor) {
  return Float64Array.of(state.yielded, state.cleaned, state.lastSignalAborted ? 1 : 0);
}

register.method('words', { outputs: ['text'] }, (n) => register.addStage(words, [n], { stream: true }));
register.method('sums', { outputs: ['y'] }, (x1, x2) => register.addStage(steps, [register.addStage(model, [x1, x2])], { stream: true }));
register.method('failing', { outputs: ['text'] }, (n) => register.addStage(failing, [n], { stream: true }));
register.method('pairs', { outputs: ['num', 'txt'] }, (n) => {
  const [txt, num] = register.addStage(pairs, [n], { stream: true, outputsCount: 2 });
  return [num, txt];
});
register.method('bad', { outputs: ['text'] }, (n) => register.addStage(bad, [n], { stream: true }));
register.method('counters', { outputs: ['c'] }, (x) => register.addStage(counters, [x]));
`,
);
fx.model('stream', 1, 'add.onnx', addModel({ batch: 'N' }));
t.teardown(() => fx.remove());

const engine = new ServingServer();
engine.log = () => {};
t.before(() => engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'stream', numParallelWorkers: 1, deviceIds: [0], intraOpThreads: 1 })));
t.teardown(() => engine.stop());

const n = (count: number) => ({ n: f32([count], [1]) });
const text = (e: StreamEvent): string => {
  if (!('outputs' in e)) throw e.error;
  return tensorStrings(e.outputs.text!)[0]!;
};

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const all: StreamEvent[] = [];
  for await (const e of events) all.push(e);
  return all;
}

/** The generators' counters: [yielded, cleaned up, the last cleanup saw ctx.signal aborted]. */
async function counters(): Promise<{ yielded: number; cleaned: number; aborted: boolean }> {
  const [out] = await engine.infer('stream', 'counters', [{ x: f32([0], [1]) }]);
  const c = out!.c!.data as Float64Array;
  return { yielded: c[0]!, cleaned: c[1]!, aborted: c[2] === 1 };
}

/** Polls the counters until `done` holds (bounded: 100 polls, 20 ms apart). */
async function until(done: (c: Awaited<ReturnType<typeof counters>>) => boolean): Promise<Awaited<ReturnType<typeof counters>>> {
  let c = await counters();
  for (let i = 0; i < 100 && !done(c); i++) {
    await new Promise((r) => setTimeout(r, 20));
    c = await counters();
  }
  return c;
}

t.test('a stream stage streams each yield as an event, in order, and the method says it streams', async (t) => {
  t.equal(engine.lookup('stream', 'words').info.stream, true);
  t.equal(engine.lookup('stream', 'counters').info.stream, undefined);
  const events = await collect(engine.inferStream('stream', 'words', [n(5)]));
  t.same(events.map((e) => [e.index, text(e)]), [0, 1, 2, 3, 4].map((i) => [0, `w${i}`]));
});

t.test('instances stream side by side, each in order, with request parameters as ctx.parameters', async (t) => {
  const events = await collect(engine.inferStream('stream', 'words', [n(3), n(2)], { parameters: { prefix: 'p', delayMs: 1 } }));
  t.same(events.filter((e) => e.index === 0).map(text), ['p0', 'p1', 'p2']);
  t.same(events.filter((e) => e.index === 1).map(text), ['p0', 'p1']);
  t.equal(events.length, 5);
});

t.test('a stream stage after a model stage calls the model at each step (model.call)', async (t) => {
  const events = await collect(engine.inferStream('stream', 'sums', [{ x1: f32([1, 2, 3, 4]), x2: f32([0, 0, 0, 0]) }], { parameters: { steps: 3 } }));
  t.same(
    events.map((e) => ('outputs' in e ? [...(e.outputs.y!.data as Float32Array)] : e.error.message)),
    [
      [2, 3, 4, 5],
      [3, 4, 5, 6],
      [4, 5, 6, 7],
    ],
  );
});

t.test('a generator that throws midway: its outputs, then an error event, then the end', async (t) => {
  const events = await collect(engine.inferStream('stream', 'failing', [n(1)]));
  t.same(events.slice(0, 2).map(text), ['a', 'b']);
  const last = events[2]!;
  t.equal(events.length, 3);
  t.ok('error' in last && last.error instanceof ServingError);
  if ('error' in last) {
    t.equal(last.error.code, 'E_STAGE_FAILED');
    t.match(last.error.message, /boom after two/);
    t.equal(last.index, 0);
  }
});

t.test('a stream stage of several outputs: each yield names them as the method returns them', async (t) => {
  const events = await collect(engine.inferStream('stream', 'pairs', [n(2)]));
  t.same(
    events.map((e) => ('outputs' in e ? [tensorStrings(e.outputs.txt!)[0], [...(e.outputs.num!.data as Float32Array)]] : e.error.message)),
    [
      ['p0', [0]],
      ['p1', [1]],
    ],
  );
  const [whole] = await engine.infer('stream', 'pairs', [n(3)]);
  t.same(tensorStrings(whole!.txt!), ['p0p1p2']);
  t.same(whole!.num!.shape, [3], 'float32 [1] partials joined into [3]');
});

t.test('a yield that is not a result ends its instance with E_STAGE_FAILED', async (t) => {
  const events = await collect(engine.inferStream('stream', 'bad', [n(1)]));
  t.equal(events.length, 2);
  t.equal(text(events[0]!), 'fine');
  const last = events[1]!;
  t.ok('error' in last && last.error.code === 'E_STAGE_FAILED' && /Function 'bad' output 0: cannot convert Object to a tensor/.test(last.error.message), 'error' in last ? last.error.message : 'outputs');
});

t.test('unary calls of a streaming method get the partials joined', async (t) => {
  const [words] = await engine.infer('stream', 'words', [n(3)], { parameters: { prefix: 'x' } });
  t.same(tensorStrings(words!.text!), ['x0x1x2']);
  t.same(words!.text!.shape, []);
  const [sums] = await engine.infer('stream', 'sums', [{ x1: f32([1, 2, 3, 4]), x2: f32([0, 0, 0, 0]) }], { parameters: { steps: 2 } });
  const y = sums!.y!;
  t.same(y.shape, [4, 2], 'numeric partials concatenated along axis 0');
  t.same([...(y.data as Float32Array)], [2, 3, 4, 5, 3, 4, 5, 6]);
  const [failed] = await engine.inferEach('stream', 'failing', [n(1)]);
  t.ok(failed instanceof ServingError && failed.code === 'E_STAGE_FAILED', 'a stream that fails fails the unary call');
});

t.test('a non-streaming method through inferStream: one event per instance, errors included', async (t) => {
  const events = await collect(engine.inferStream('stream', 'counters', [{ x: f32([0], [1]) }, { nope: f32([0], [1]) }]));
  t.equal(events.length, 2);
  const byIndex = new Map(events.map((e) => [e.index, e]));
  const first = byIndex.get(0)!;
  t.ok('outputs' in first && first.outputs.c !== undefined, 'instance 0: its outputs');
  const second = byIndex.get(1)!;
  t.ok('error' in second && second.error.code === 'E_EXTRA_INPUT', 'instance 1: its error');
});

t.test('whole-request problems reject the first next()', async (t) => {
  await t.rejects(engine.inferStream('stream', 'nope', [n(1)]).next(), { code: 'E_UNKNOWN_METHOD' });
  await t.rejects(engine.inferStream('stream', 'words', []).next(), { code: 'E_NO_INSTANCES' });
  await t.rejects(engine.inferStream('stream', 'words', [n(1)], { parameters: { bad: [1] as unknown as string } }).next(), { code: 'E_INVALID_ARGUMENT' });
  await t.rejects(engine.lookup('stream', 'words').inferStream([n(1)], { deadlineMS: 5 } as never).next(), { code: 'E_INVALID_ARGUMENT' });
});

t.test('breaking out of the loop stops the generator: its finally runs, it yields no more', async (t) => {
  const before = await counters();
  let seen = 0;
  for await (const e of engine.inferStream('stream', 'words', [n(1000)], { parameters: { delayMs: 5 } })) {
    text(e);
    if (++seen === 3) break;
  }
  const after = await until((c) => c.cleaned > before.cleaned);
  t.equal(after.cleaned, before.cleaned + 1, "the generator's finally ran");
  t.ok(after.aborted, 'ctx.signal was aborted when it did');
  t.ok(after.yielded - before.yielded < 1000, `stopped early (${after.yielded - before.yielded} yields)`);
  const later = await counters();
  t.equal(later.yielded, after.yielded, 'and yields no more');
});

t.test('return() while a next() waits ends that next() at once and stops the generator', async (t) => {
  const before = await counters();
  const stream = engine.inferStream('stream', 'words', [n(1000)], { parameters: { delayMs: 100 } });
  t.equal(text((await stream.next()).value as StreamEvent), 'w0');
  const waiting = stream.next();
  await stream.return!();
  t.same(await waiting, { done: true, value: undefined }, 'the waiting next() ends');
  const after = await until((c) => c.cleaned > before.cleaned);
  t.equal(after.cleaned, before.cleaned + 1, "the generator's finally ran");
  t.ok(after.yielded - before.yielded < 5, `it stopped at its next step (${after.yielded - before.yielded} yields)`);
});

t.test('a generator that yields nothing: no events, and an empty string unary', async (t) => {
  t.same(await collect(engine.inferStream('stream', 'words', [n(0)])), []);
  const [out] = await engine.infer('stream', 'words', [n(0)]);
  t.same(tensorStrings(out!.text!), ['']);
});

t.test('aborting options.signal stops the generator and ends the stream with an error event', async (t) => {
  const before = await counters();
  const abort = new AbortController();
  const events: StreamEvent[] = [];
  for await (const e of engine.inferStream('stream', 'words', [n(1000)], { signal: abort.signal, parameters: { delayMs: 5 } })) {
    events.push(e);
    if (events.length === 3) abort.abort();
  }
  const last = events.at(-1)!;
  t.ok('error' in last && last.error.code === 'E_CANCELLED', 'the last event is E_CANCELLED');
  t.ok(events.length < 20, `the stream ended soon after (${events.length} events)`);
  const after = await until((c) => c.cleaned > before.cleaned);
  t.equal(after.cleaned, before.cleaned + 1, "the generator's finally ran");
});

t.test('the deadline covers the whole stream', async (t) => {
  const before = await counters();
  const events = await collect(engine.inferStream('stream', 'words', [n(1000)], { deadlineMs: 300, parameters: { delayMs: 10 } }));
  const last = events.at(-1)!;
  t.ok(events.length > 1, 'some outputs came first');
  t.ok('error' in last && last.error.code === 'E_DEADLINE_EXCEEDED', 'then E_DEADLINE_EXCEEDED');
  const after = await until((c) => c.cleaned > before.cleaned);
  t.equal(after.cleaned, before.cleaned + 1, "the generator's finally ran");
});

t.test('back-pressure: a reader that does not read stops the generator at the credit', async (t) => {
  const before = await counters();
  const stream = engine.inferStream('stream', 'words', [n(200)]);
  t.equal(text((await stream.next()).value as StreamEvent), 'w0');
  // Wait until the generator stops advancing (the same count three polls in a row).
  let last = -1;
  let same = 0;
  for (let i = 0; i < 100 && same < 3; i++) {
    await new Promise((r) => setTimeout(r, 30));
    const c = (await counters()).yielded - before.yielded;
    same = c === last ? same + 1 : 0;
    last = c;
  }
  t.ok(last >= STREAM_CREDIT && last <= STREAM_CREDIT + 4, `${last} yields with one read: held at the credit (${STREAM_CREDIT})`);
  const rest = await collect(stream);
  t.equal(rest.length, 199, 'the rest comes once the reader reads');
  t.same(rest.map(text).slice(-1), ['w199']);
  const after = await counters();
  t.equal(after.yielded - before.yielded, 200);
});

t.test('stream events are counted in the metrics', async (t) => {
  const value = (): number => Number(/actorserve_stream_events_total\{servable="stream",method="words"\} (\d+)/.exec(engine.metrics!.render())?.[1] ?? 0);
  const before = value();
  await collect(engine.inferStream('stream', 'words', [n(4)]));
  t.equal(value() - before, 4);
});

// Last: it stops the engine.
t.test('stopping the server with a stream open ends it with E_STOPPED events', async (t) => {
  const stream = engine.inferStream('stream', 'words', [n(1000), n(1000)], { parameters: { delayMs: 5 } });
  const first = await stream.next();
  t.notOk(first.done);
  await engine.stop();
  const rest = await collect(stream);
  const errors = rest.filter((e): e is Extract<StreamEvent, { error: unknown }> => 'error' in e);
  t.same(errors.map((e) => [e.index, e.error.code]).sort(), [
    [0, 'E_STOPPED'],
    [1, 'E_STOPPED'],
  ]);
  t.same(rest.slice(-2).map((e) => 'error' in e), [true, true], 'and the stream ends with them');
});
