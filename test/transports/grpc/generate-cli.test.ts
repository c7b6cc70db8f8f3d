// `actorserve generate` (runGenerateCommand) against a real gRPC server: text printed as it
// arrives, parameters from the flags, usage errors (exit 2), failures (exit 1), a REST port.
import t from 'tap';
import { startGrpcServer, type GrpcServer } from '../../../dist/transports/grpc/server.js';
import { startRestfulServer, type RestServer } from '../../../dist/transports/rest/server.js';
import { runGenerateCommand } from '../../../dist/transports/grpc/generate-cli.js';
import { startStreamEngine, type StreamEngine } from '../../helpers/streams.js';

let env: StreamEngine;
let server: GrpcServer;
let rest: RestServer;
t.before(async () => {
  env = await startStreamEngine('grpc-generate-cli');
  server = await startGrpcServer(env.engine, '127.0.0.1:0');
  rest = await startRestfulServer(env.engine, '127.0.0.1:0');
});
t.teardown(async () => {
  await rest?.close();
  await server?.close();
  await env?.stop();
});

async function run(argv: string[], interrupt = new AbortController().signal) {
  const stdout: string[] = [];
  let stderr = '';
  const code = await runGenerateCommand(argv, { stdout: (s) => stdout.push(s), stderr: (s) => (stderr += s) }, interrupt);
  return { code, stdout, stderr };
}

t.test('prints the generated text, then a newline', async (t) => {
  const r = await run([server.address, 'streamer', '--prompt', 'hello there', '--max-tokens', '5', '--temperature', '0.5', '--top-p', '0.9', '--top-k', '3', '--seed', '7', '--stop', '.', '--stop', '!', '--param', 'greedy=true']);
  t.equal(r.stderr, '');
  t.equal(r.code, 0);
  t.same(r.stdout, ['HELLO THERE', '\n']);
});

t.test('--help and usage errors', async (t) => {
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout.join(''), /usage: actorserve generate <address> <servable> --prompt TEXT/);
  const cases: [string[], RegExp][] = [
    [[server.address, 'streamer'], /give the prompt with --prompt TEXT/],
    [[server.address, '--prompt', 'x'], /expected <address> <servable>, got 1 argument/],
    [[server.address, 'streamer', '--prompt', 'x', '--max-tokens', '0'], /--max-tokens must be an integer >= 1/],
    [[server.address, 'streamer', '--prompt', 'x', '--temperature', 'hot'], /--temperature must be a number >= 0/],
    [[server.address, 'streamer', '--prompt', 'x', '--max-token', '3'], /Unknown option '--max-token' \(did you mean '--max-tokens'\?\)/],
    [[server.address, 'streamer', '--prompt', 'x', '--param', 'nope'], /--param "nope" is not NAME=VALUE/],
    [[server.address, 'streamer', '--prompt'], /--prompt needs a value/],
  ];
  for (const [argv, message] of cases) {
    const r = await run(argv);
    t.equal(r.code, 2, argv.join(' '));
    t.match(r.stderr, message, argv.join(' '));
    t.match(r.stderr, /Run "actorserve generate --help" for usage\.\n$/);
  }
});

t.test('a failed generation: the error on stderr, exit 1', async (t) => {
  const unknown = await run([server.address, 'nope', '--prompt', 'x']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /^actorserve generate: E_UNKNOWN_SERVABLE: servable 'nope' is not loaded/);
  const wrongMethod = await run([server.address, 'streamer', '--method', 'echo', '--prompt', 'x']);
  t.equal(wrongMethod.code, 1);
  t.match(wrongMethod.stderr, /E_EXTRA_INPUT/);
});

t.test('a REST port given as the address is reported at once', async (t) => {
  const r = await run([rest.address, 'streamer', '--prompt', 'x']);
  t.equal(r.code, 1);
  t.match(r.stderr, /answers HTTP\/1\.1, not gRPC \(is it a REST port\?\): generate speaks gRPC/);
});
