// Server-Sent Events on MindSpore-style URLs and the OIP generate endpoints, against methods
// that do not stream (one event per instance): event order and format, the explicit end,
// errors before the first event as ordinary HTTP errors, instance errors as error events.
import t from 'tap';
import { startRestfulServer, type RestServer } from '../../../dist/transports/rest/server.js';
import { allEvents, postSse, startStreamEngine, type StreamEngine } from '../../helpers/streams.js';
import { request } from './fixtures/rest.js';

let env: StreamEngine;
let rest: RestServer;

t.before(async () => {
  env = await startStreamEngine('rest-sse');
  rest = await startRestfulServer(env.engine, '127.0.0.1:0');
});
t.teardown(async () => {
  await rest?.close();
  await env?.stop();
});

t.test('SSE on a MindSpore URL: one event per instance, in order, then the end event', async (t) => {
  const r = await postSse(rest.port, '/model/streamer:echo', { instances: [{ x: 1 }, { x: 'two' }, { x: [3.5, 4] }] });
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^text\/event-stream/);
  t.equal(r.headers['cache-control'], 'no-cache');
  t.ok(r.headers['x-request-id'], 'the request id comes back');
  const events = await allEvents(r);
  t.same(events, [
    { event: 'message', data: '{"index":0,"outputs":{"y":1}}' },
    { event: 'message', data: '{"index":1,"outputs":{"y":"two"}}' },
    { event: 'message', data: '{"index":2,"outputs":{"y":[3.5,4.0]}}' },
    { event: 'end', data: '{}' },
  ]);
});

t.test('SSE: an instance that fails is an error event; the others still arrive', async (t) => {
  const r = await postSse(rest.port, '/model/streamer:fail', { instances: [{ x: 'ok' }, { x: 'boom' }] });
  t.equal(r.status, 200);
  const events = await allEvents(r);
  t.equal(events.length, 3);
  t.same(events[0], { event: 'message', data: '{"index":0,"outputs":{"y":"ok"}}' });
  t.equal(events[1]!.event, 'error');
  t.match(JSON.parse(events[1]!.data), { index: 1, error_code: 'E_STAGE_FAILED', error_msg: /boom was asked for/ });
  t.same(events[2], { event: 'end', data: '{}' });
});

t.test('SSE: errors before the first event are ordinary HTTP errors', async (t) => {
  const unknown = await postSse(rest.port, '/model/nope:echo', { instances: [{ x: 1 }] });
  t.equal(unknown.status, 404);
  t.match(unknown.headers['content-type'], /^application\/json/);
  t.match(JSON.parse(await unknown.text()), { error_msg: /servable 'nope' is not loaded/ });
  const badBody = await postSse(rest.port, '/model/streamer:echo', '{"instances": [');
  t.equal(badBody.status, 400);
  t.match(JSON.parse(await badBody.text()), { error_msg: /./ });
  // one instance whose first event is an error: the request failed as a whole
  const one = await postSse(rest.port, '/model/streamer:fail', { instances: [{ x: 'boom' }] });
  t.equal(one.status, 500);
  t.match(JSON.parse(await one.text()), { error_msg: /boom was asked for/ });
});

t.test('without Accept: text/event-stream the reply is the usual JSON', async (t) => {
  const r = await request({ port: rest.port }, '/model/streamer:echo', { body: '{"instances":[{"x":1}]}', headers: { Accept: 'application/json' } });
  t.equal(r.status, 200);
  t.same(r.json, { instances: [{ y: 1 }] });
});

t.test('generate: one JSON reply with model_name, model_version and text_output', async (t) => {
  const r = await request({ port: rest.port }, '/v2/models/streamer.generate/generate', { body: JSON.stringify({ id: 'r1', text_input: 'hello', parameters: { max_tokens: 4, stop: ['\n'] } }) });
  t.equal(r.status, 200, r.text);
  t.same(r.json, { id: 'r1', model_name: 'streamer.generate', model_version: '1', text_output: 'HELLO' });
  const versioned = await request({ port: rest.port }, '/v2/models/streamer.generate/versions/1/generate', { body: '{"text_input":"x"}' });
  t.same(versioned.json, { model_name: 'streamer.generate', model_version: '1', text_output: 'X' });
});

t.test('generate_stream: data-only events with done, ending with done: true', async (t) => {
  const r = await postSse(rest.port, '/v2/models/streamer.generate/generate_stream', { text_input: 'abc' });
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^text\/event-stream/);
  const events = await allEvents(r);
  t.same(
    events.map((e): unknown[] => [e.event, JSON.parse(e.data) as unknown]),
    [
      ['message', { model_name: 'streamer.generate', model_version: '1', text_output: 'ABC', done: false }],
      ['message', { model_name: 'streamer.generate', model_version: '1', text_output: '', done: true }],
    ],
  );
});

t.test('generate errors are {"error"} replies with the status of their cause', async (t) => {
  const cases: [string, string, number, RegExp][] = [
    ['/v2/models/nope/generate', '{"text_input":"a"}', 404, /nope/],
    ['/v2/models/streamer.generate/generate', '{"text_input":', 400, /not JSON/],
    ['/v2/models/streamer.generate/generate', '[1]', 400, /JSON object/],
    ['/v2/models/streamer.generate/generate', '{"parameters":{}}', 400, /names no inputs/],
    ['/v2/models/streamer.generate/generate', '{"text_input":"a","parameters":{"top_k":{"x":1}}}', 400, /parameter "top_k"/],
    ['/v2/models/streamer.generate/generate', '{"text_input":"a","id":7}', 400, /"id" must be a string/],
    ['/v2/models/streamer.generate/generate', '{"text_input":"a","other":1}', 400, /other/],
    ['/v2/models/streamer.generate/versions/x/generate', '{"text_input":"a"}', 400, /version/],
    ['/v2/models/streamer.generate/generate_stream', '{"prompt":"a"}', 400, /prompt/],
  ];
  for (const [path, body, status, message] of cases) {
    const r = await request({ port: rest.port }, path, { body });
    t.equal(r.status, status, `${path} ${body}`);
    t.match(r.json, { error: message }, `${path} ${body}`);
  }
});

t.test('GET /v2 lists the generate extension', async (t) => {
  const r = await request({ port: rest.port }, '/v2', { method: 'GET' });
  t.ok((r.json as { extensions: string[] }).extensions.includes('generate'));
});
