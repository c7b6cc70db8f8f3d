// Server-Sent Events from a streaming method (a stream stage yielding pieces): events in order
// with the explicit end, request parameters reaching the stage, generate/generate_stream,
// an error after the first event, a client that goes away stopping the generator, and a
// client that stops reading holding the generator back (bounded), also through the strict
// HTTP/1.1 front.
import t, { type Test } from 'tap';
import { startRestfulServer, type RestServer } from '../../../dist/transports/rest/server.js';
import { allEvents, postSse, startStreamEngine, type StreamEngine } from '../../helpers/streams.js';
import { request } from './fixtures/rest.js';

let env: StreamEngine;
let rest: RestServer;
let strict: RestServer;

t.before(async () => {
  env = await startStreamEngine('rest-sse-stream');
  rest = await startRestfulServer(env.engine, '127.0.0.1:0');
  strict = await startRestfulServer(env.engine, '127.0.0.1:0', { strictHttp: true });
});
t.teardown(async () => {
  await strict?.close();
  await rest?.close();
  await env?.stop();
});

const data = (text: string) => ({ event: 'message', data: JSON.stringify({ index: 0, outputs: { text_output: text } }) });

t.test('a streaming method over SSE: one event per piece, in order, then the end event', async (t) => {
  for (const server of [rest, strict]) {
    const r = await postSse(server.port, '/model/streamer:tokens', { instances: [{ text_input: 'w' }], parameters: { max_tokens: 4 } });
    t.equal(r.status, 200);
    t.match(r.headers['content-type'], /^text\/event-stream/);
    t.same(await allEvents(r), [data('w0 '), data('w1 '), data('w2 '), data('w3 '), { event: 'end', data: '{}' }], server === strict ? 'strict front' : 'uWS');
  }
});

t.test('two instances stream side by side; each event names its instance', async (t) => {
  const r = await postSse(rest.port, '/model/streamer:tokens', { instances: [{ text_input: 'a' }, { text_input: 'b' }], parameters: { max_tokens: 3 } });
  const events = await allEvents(r);
  t.equal(events.at(-1)!.event, 'end');
  const byIndex = [0, 1].map((i) =>
    events
      .slice(0, -1)
      .map((e) => JSON.parse(e.data) as { index: number; outputs: { text_output: string } })
      .filter((e) => e.index === i)
      .map((e) => e.outputs.text_output),
  );
  t.same(byIndex, [
    ['a0 ', 'a1 ', 'a2 '],
    ['b0 ', 'b1 ', 'b2 '],
  ]);
});

t.test("the body's parameters reach the stage; without SSE the pieces are joined", async (t) => {
  const params = { max_tokens: 3, temperature: 0.5, greedy: true, stop: ['\n', '.'], seed: 42 };
  const shown = await postSse(rest.port, '/model/streamer:parameters', { instances: [{ text_input: '' }], parameters: params });
  const [first] = await allEvents(shown);
  t.same(JSON.parse((JSON.parse(first!.data) as { outputs: { text_output: string } }).outputs.text_output), { ...params, stop: '["\\n","."]' });
  const unary = await request({ port: rest.port }, '/model/streamer:tokens', { body: JSON.stringify({ instances: [{ text_input: 'u' }], parameters: { max_tokens: 3 } }) });
  t.equal(unary.status, 200);
  t.same(unary.json, { instances: [{ text_output: 'u0 u1 u2 ' }] });
  // KServe v2 infer: joined too, its parameters (but Triton's reserved ones) reach the stage
  const v2 = await request({ port: rest.port }, '/v2/models/streamer.parameters/infer', {
    body: JSON.stringify({ inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [], data: [''] }], parameters: { top_k: 3, sequence_id: 0, triton_x: 1, stop: '.' } }),
  });
  t.equal(v2.status, 200, v2.text);
  const [out] = (v2.json as { outputs: { data: string[] }[] }).outputs;
  t.same(JSON.parse(out!.data[0]!), { top_k: 3, stop: '.' });
});

t.test('generate joins the pieces; generate_stream sends them with done: false, then done: true', async (t) => {
  const whole = await request({ port: rest.port }, '/v2/models/streamer.tokens/generate', { body: JSON.stringify({ text_input: 'g', parameters: { max_tokens: 3, stop: ['x'] } }) });
  t.equal(whole.status, 200, whole.text);
  t.same(whole.json, { model_name: 'streamer.tokens', model_version: '1', text_output: 'g0 g1 g2 ' });
  const r = await postSse(strict.port, '/v2/models/streamer.tokens/generate_stream', { id: 's1', text_input: 'g', parameters: { max_tokens: 2 } });
  t.equal(r.status, 200);
  const head = { id: 's1', model_name: 'streamer.tokens', model_version: '1' };
  t.same(
    (await allEvents(r)).map((e) => JSON.parse(e.data) as unknown),
    [
      { ...head, text_output: 'g0 ', done: false },
      { ...head, text_output: 'g1 ', done: false },
      { ...head, text_output: '', done: true },
    ],
  );
});

t.test('an error after the first event is an error event, and the end still comes', async (t) => {
  const r = await postSse(rest.port, '/model/streamer:tokens', { instances: [{ text_input: 'e' }], parameters: { max_tokens: 5, fail_after: 2 } });
  t.equal(r.status, 200);
  const events = await allEvents(r);
  t.same(events.slice(0, 2), [data('e0 '), data('e1 ')]);
  t.equal(events[2]!.event, 'error');
  t.match(JSON.parse(events[2]!.data), { index: 0, error_code: 'E_STAGE_FAILED', error_msg: /failed after 2 pieces/ });
  t.same(events[3], { event: 'end', data: '{}' });
  t.equal(events.length, 4);
  const g = await postSse(rest.port, '/v2/models/streamer.tokens/generate_stream', { text_input: 'e', parameters: { fail_after: 1 } });
  const gen = (await allEvents(g)).map((e) => JSON.parse(e.data) as Record<string, unknown>);
  t.equal(gen.length, 3);
  t.match(gen[1], { error: /failed after 1 pieces/ });
  t.match(gen[2], { done: true });
  // failing before its first piece: an ordinary HTTP error
  const early = await request({ port: rest.port }, '/v2/models/streamer.tokens/generate_stream', { body: JSON.stringify({ text_input: 'e', parameters: { fail_after: 0 } }) });
  t.equal(early.status, 500);
  t.match(early.json, { error: /failed after 0 pieces/ });
});

/** A client that goes away after two events stops the generator at its next step. */
async function disconnects(t: Test, server: RestServer) {
  const before = await env.counters();
  const r = await postSse(server.port, '/model/streamer:tokens', { instances: [{ text_input: 'c' }], parameters: { max_tokens: 10_000, delay_ms: 5 } });
  let seen = 0;
  for await (const e of r.events) {
    t.equal(e.event, 'message');
    if (++seen === 2) break;
  }
  r.destroy();
  const after = await env.until((c) => c.cleaned > before.cleaned);
  t.equal(after.cleaned, before.cleaned + 1, 'the generator finished');
  t.ok(after.aborted, 'it saw its signal aborted');
  t.ok(after.yielded - before.yielded < 1000, `it stopped early (${after.yielded - before.yielded} of 10000 pieces)`);
}

t.test('a client that goes away stops the generator', async (t) => {
  await disconnects(t, rest);
});

t.test('through the strict front too', async (t) => {
  await disconnects(t, strict);
});

t.test('a client that stops reading holds the generator back; nothing piles up without bound', async (t) => {
  const before = await env.counters();
  // 100 000 pieces of 4 KiB: 400 MiB if the server buffered whatever the generator made
  const r = await postSse(rest.port, '/model/streamer:tokens', { instances: [{ text_input: 'p' }], parameters: { max_tokens: 100_000, size: 4096 } });
  const first = await r.events.next();
  t.equal(first.value && first.value.event, 'message');
  r.res.pause();
  // let the socket buffers fill, then watch the count stand still
  await new Promise((resolve) => setTimeout(resolve, 700));
  const held = await env.counters();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const later = await env.counters();
  const made = later.yielded - before.yielded;
  t.ok(made < 5000, `the generator made ${made} of 100000 pieces (${Math.round((made * 4) / 1024)} MiB) while the client read none`);
  t.ok(later.yielded - held.yielded <= 16, `and it stood (nearly) still: ${later.yielded - held.yielded} more in 300 ms`);
  r.destroy();
  const done = await env.until((c) => c.cleaned > before.cleaned);
  t.ok(done.aborted, 'closing the connection stopped it');
});

t.test('closing the server cuts an open stream (no end event) and stops its generator', async (t) => {
  const other = await startRestfulServer(env.engine, '127.0.0.1:0');
  const before = await env.counters();
  const r = await postSse(other.port, '/model/streamer:tokens', { instances: [{ text_input: 'z' }], parameters: { max_tokens: 10_000, delay_ms: 5 } });
  t.equal((await r.events.next()).value?.event, 'message');
  await other.close(200); // the stream outlives the close timeout: its connection is closed
  const rest: string[] = [];
  try {
    for await (const e of r.events) rest.push(e.event);
  } catch {
    // the connection was cut
  }
  t.notOk(rest.includes('end'), 'no end event: the client can tell the stream was cut off');
  const after = await env.until((c) => c.cleaned > before.cleaned);
  t.ok(after.aborted, 'the generator was stopped');
});
