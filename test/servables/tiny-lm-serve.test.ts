// The bundled `tiny_lm` as a user meets it: `actorserve serve --servables tiny_lm`, then
// `actorserve generate` over gRPC and the OIP generate / generate_stream endpoints over REST.
// Each gives the reference implementation's greedy continuation (plain TypeScript, no ONNX
// Runtime), and the stream's pieces join to the one-reply text.
import t from 'tap';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { tinyLmReferenceBackend } from '../../dist/servables/tiny-lm.js';
import { generateText, generationParams } from '../../dist/servables/tiny-lm-text.js';
import { BUNDLED_SERVABLES } from '../helpers/fixtures.js';
import { REST_LISTENING, runCli } from '../helpers/cli.js';

const PROMPT = 'hello ';
const MAX_TOKENS = 12;

await ensureExampleModels(BUNDLED_SERVABLES);
let expected = '';
for await (const piece of generateText(PROMPT, generationParams({ max_tokens: MAX_TOKENS }), tinyLmReferenceBackend())) expected += piece;

const server = runCli(['serve', '--servables', 'tiny_lm', '--rest-address', '127.0.0.1:0', '--grpc-address', '127.0.0.1:0']);
t.teardown(async () => {
  server.child.kill('SIGINT');
  await server.exited;
});
const [, restPort] = await server.waitFor(REST_LISTENING);
const [, grpcPort] = await server.waitFor(/gRPC server listening on 127\.0\.0\.1:(\d+)/);

t.test('the reference continuation is non-trivial text', async (t) => {
  t.ok(expected.length > 0 && expected.length <= MAX_TOKENS, `greedy gives ${JSON.stringify(expected)}`);
});

t.test('actorserve generate over gRPC prints the greedy continuation', async (t) => {
  const cli = runCli(['generate', `127.0.0.1:${grpcPort}`, 'tiny_lm', '--prompt', PROMPT, '--max-tokens', String(MAX_TOKENS)]);
  t.equal(await cli.exited, 0, cli.output());
  t.equal(cli.output().trimEnd(), expected.trimEnd());
});

t.test('REST generate answers it in one reply; generate_stream in pieces that join to it, then done', async (t) => {
  const body = JSON.stringify({ text_input: PROMPT, parameters: { max_tokens: MAX_TOKENS } });
  const one = await fetch(`http://127.0.0.1:${restPort}/v2/models/tiny_lm/generate`, { method: 'POST', body });
  t.equal(one.status, 200);
  t.match(await one.json(), { model_name: 'tiny_lm', model_version: '1', text_output: expected });

  const res = await fetch(`http://127.0.0.1:${restPort}/v2/models/tiny_lm/generate_stream`, { method: 'POST', body });
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/event-stream/);
  const events = (await res.text())
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => JSON.parse(e.slice('data: '.length)) as { text_output: string; done: boolean });
  t.ok(events.length >= 2, `${events.length} events`);
  t.same(events.at(-1)?.done, true, 'the last event says done');
  t.ok(events.slice(0, -1).every((e) => e.done === false), 'every other event says not done');
  t.equal(events.map((e) => e.text_output).join(''), expected, 'the pieces join to the continuation');
});
