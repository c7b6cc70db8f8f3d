// actorserve.v1 InferStream from a streaming method (a stream stage yielding pieces): the
// client's iterators see the pieces in order, parameters reach the stage, an error after the
// first event is an event, breaking out or aborting stops the generator, a client that stops
// pulling holds the generator back, and `actorserve generate` prints pieces as they come.
import t from 'tap';
import { startGrpcServer, type GrpcServer } from '../../../dist/transports/grpc/server.js';
import { Client } from '../../../dist/transports/grpc/client.js';
import { runGenerateCommand } from '../../../dist/transports/grpc/generate-cli.js';
import { tensorStrings } from '../../../dist/engine/tensor.js';
import { startStreamEngine, type StreamEngine } from '../../helpers/streams.js';

let env: StreamEngine;
let server: GrpcServer;
let client: Client;

t.before(async () => {
  env = await startStreamEngine('grpc-generation');
  server = await startGrpcServer(env.engine, '127.0.0.1:0');
  client = new Client(server.address, 'streamer', 'tokens');
});
t.teardown(async () => {
  client?.close();
  await server?.close();
  await env?.stop();
});

t.test('inferStream: the pieces in order, per instance', async (t) => {
  const seen: [number, string][] = [];
  for await (const e of client.inferStream([{ text_input: 'a' }, { text_input: 'b' }], { parameters: { max_tokens: 3 } })) {
    if ('error' in e) throw e.error;
    seen.push([e.index, tensorStrings(e.outputs['text_output']!)[0]!]);
  }
  t.same(
    [0, 1].map((i) => seen.filter(([k]) => k === i).map(([, s]) => s)),
    [
      ['a0 ', 'a1 ', 'a2 '],
      ['b0 ', 'b1 ', 'b2 '],
    ],
  );
});

t.test("MindSpore's unary Predict (and PredictStream) on a streaming method: the pieces joined", async (t) => {
  const [out] = await client.infer({ text_input: 'm' });
  t.same(tensorStrings(out!['text_output']!), ['m0 m1 m2 m3 m4 ']);
  const stream = client.stream();
  const [piped] = await stream.infer({ text_input: 'p' });
  await stream.end();
  t.same(tensorStrings(piped!['text_output']!), ['p0 p1 p2 p3 p4 ']);
});

t.test('generate: text pieces as they come; every kind of parameter reaches the stage', async (t) => {
  const pieces: string[] = [];
  for await (const p of client.generate('streamer', 'g', { max_tokens: 4 }, { method: 'tokens' })) pieces.push(p);
  t.same(pieces, ['g0 ', 'g1 ', 'g2 ', 'g3 ']);
  const shown: string[] = [];
  const params = { max_tokens: 16, temperature: 0.25, top_p: 0.9, greedy: false, stop: ['\n', 'END'], name: 'x' };
  for await (const p of client.generate('streamer', '', params, { method: 'parameters' })) shown.push(p);
  t.same(JSON.parse(shown.join('')), { ...params, stop: '["\\n","END"]' });
});

t.test('an error after the first piece is an event; the stream still ends cleanly', async (t) => {
  const events = [];
  for await (const e of client.inferStream({ text_input: 'e' }, { parameters: { max_tokens: 5, fail_after: 2 } })) events.push(e);
  t.equal(events.length, 3);
  t.match(events[2], { index: 0, error: { code: 'E_STAGE_FAILED', message: /failed after 2 pieces/ } });
  // generate throws it, after the pieces before it
  const pieces: string[] = [];
  await t.rejects(
    (async () => {
      for await (const p of client.generate('streamer', 'e', { fail_after: 1 }, { method: 'tokens' })) pieces.push(p);
    })(),
    { code: 'E_STAGE_FAILED' },
  );
  t.same(pieces, ['e0 ']);
  // before the first piece: the call fails as a whole
  await t.rejects(client.inferStream({ text_input: 'e' }, { parameters: { fail_after: 0 } }).next(), { code: 'E_STAGE_FAILED', message: /failed after 0 pieces/ });
});

t.test('breaking out of the loop, or aborting the signal, stops the generator', async (t) => {
  for (const how of ['break', 'abort'] as const) {
    const before = await env.counters();
    const ac = new AbortController();
    let seen = 0;
    try {
      for await (const e of client.inferStream({ text_input: 'c' }, { parameters: { max_tokens: 10_000, delay_ms: 5 }, signal: ac.signal })) {
        t.ok('outputs' in e);
        if (++seen < 2) continue;
        if (how === 'break') break;
        ac.abort();
      }
      t.equal(how, 'break', 'breaking out ends the loop quietly');
    } catch (err) {
      t.equal(how, 'abort');
      t.match(err, { code: 'E_CANCELLED' }, 'an aborted signal throws E_CANCELLED');
    }
    const after = await env.until((c) => c.cleaned > before.cleaned);
    t.equal(after.cleaned, before.cleaned + 1, `${how}: the generator finished`);
    t.ok(after.aborted, `${how}: it saw its signal aborted`);
    t.ok(after.yielded - before.yielded < 1000, `${how}: it stopped early (${after.yielded - before.yielded} of 10000)`);
  }
});

t.test('a client that stops pulling holds the generator back; nothing piles up without bound', async (t) => {
  const before = await env.counters();
  const it = client.inferStream({ text_input: 'p' }, { parameters: { max_tokens: 100_000, size: 4096 } });
  t.ok('outputs' in (await it.next()).value!);
  await new Promise((resolve) => setTimeout(resolve, 700));
  const held = await env.counters();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const later = await env.counters();
  const made = later.yielded - before.yielded;
  t.ok(made < 5000, `the generator made ${made} of 100000 pieces (${Math.round((made * 4) / 1024)} MiB) while the client pulled one`);
  t.ok(later.yielded - held.yielded <= 16, `and it stood (nearly) still: ${later.yielded - held.yielded} more in 300 ms`);
  await it.return();
  const done = await env.until((c) => c.cleaned > before.cleaned);
  t.ok(done.aborted, 'return() stopped it');
});

t.test('actorserve generate prints each piece as it comes, and SIGINT cancels', async (t) => {
  const out: string[] = [];
  let err = '';
  const io = { stdout: (s: string) => out.push(s), stderr: (s: string) => (err += s) };
  t.equal(await runGenerateCommand([server.address, 'streamer', '--method', 'tokens', '--prompt', 'c', '--max-tokens', '3'], io, new AbortController().signal), 0, err);
  t.same(out, ['c0 ', 'c1 ', 'c2 ', '\n']);
  out.length = 0;
  const before = await env.counters();
  const interrupt = new AbortController();
  const io2 = { stdout: (s: string) => (out.push(s), out.length === 2 && interrupt.abort()), stderr: (s: string) => (err += s) };
  const code = await runGenerateCommand([server.address, 'streamer', '--method', 'tokens', '--prompt', 'i', '--max-tokens', '10000', '--param', 'delay_ms=5'], io2, interrupt.signal);
  t.equal(code, 130);
  t.same(out.slice(0, 2), ['i0 ', 'i1 ']);
  t.equal(out.at(-1), '\n');
  const after = await env.until((c) => c.cleaned > before.cleaned);
  t.ok(after.aborted && after.yielded - before.yielded < 1000, 'the generation stopped');
});

t.test('closing the server ends an open stream with an error and stops its generator', async (t) => {
  const other = await startGrpcServer(env.engine, '127.0.0.1:0');
  const c = new Client(other.address, 'streamer', 'tokens');
  t.teardown(() => c.close());
  const before = await env.counters();
  const it = c.inferStream({ text_input: 'z' }, { parameters: { max_tokens: 10_000, delay_ms: 5 } });
  t.ok('outputs' in (await it.next()).value!);
  t.equal(other.stats.activeStreams, 1);
  await other.close(200); // the stream outlives the close timeout: it is cut off
  await t.rejects(
    (async () => {
      for await (const e of it) t.ok('outputs' in e);
    })(),
    { name: 'ServingError' },
    'the client sees an error, not a normal end',
  );
  const after = await env.until((k) => k.cleaned > before.cleaned);
  t.ok(after.aborted, 'the generator was stopped');
  t.equal(other.stats.activeStreams, 0);
  t.equal(server.stats.activeStreams, 0, 'every stream of the main server ended too');
});
