// The command line as a newcomer meets it: `--version`, a mistyped command, `serve` refusing
// bad flags and config before any model loads (exit 2, one line that says what exists or what
// is expected), and one "listening" line per transport.
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { addModel } from '../../dist/servables/example-models.js';
import { ADD_CONFIG, ROOT, servableFixture } from '../helpers/fixtures.js';
import { REST_LISTENING, runCli } from '../helpers/cli.js';

const fx = servableFixture('cli-usage');
t.teardown(() => fx.remove());

t.test('--version prints the version of package.json', async (t) => {
  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-v']) {
    const p = runCli([flag]);
    t.equal(await p.exited, 0);
    t.equal(p.output(), `actorserve ${version}\n`);
  }
});

t.test('an unknown command suggests the closest and points to actorserve --help', async (t) => {
  const p = runCli(['serv', '--servables', 'add']);
  t.equal(await p.exited, 2);
  t.equal(p.output(), `actorserve: unknown command 'serv' (did you mean 'serve'?)\nRun "actorserve --help" for usage.\n`);
  const far = runCli(['frobnicate']);
  t.equal(await far.exited, 2);
  t.equal(far.output(), `actorserve: unknown command 'frobnicate'\nRun "actorserve --help" for usage.\n`);
});

t.test('generate is a command: listed, suggested, with its own --help', async (t) => {
  const list = runCli(['--help']);
  t.equal(await list.exited, 0);
  t.match(list.output(), /\n {2}generate {2}generate text over gRPC, printed as it arrives/);
  const near = runCli(['generat', 'x']);
  t.equal(await near.exited, 2);
  t.equal(near.output(), `actorserve: unknown command 'generat' (did you mean 'generate'?)\nRun "actorserve --help" for usage.\n`);
  const help = runCli(['generate', '--help']);
  t.equal(await help.exited, 0);
  t.match(help.output(), /^usage: actorserve generate <address> <servable> --prompt TEXT \[options\]\n/);
  const bad = runCli(['generate', '127.0.0.1:1', 'tiny_lm']);
  t.equal(await bad.exited, 2);
  t.equal(bad.output(), 'actorserve generate: give the prompt with --prompt TEXT\nRun "actorserve generate --help" for usage.\n');
});

/** `serve` with `args`: its exit code and output, which must come before any model loads. */
async function refused(t: Test, args: string[], message: RegExp): Promise<void> {
  const p = runCli(['serve', ...args]);
  t.equal(await p.exited, 2, args.join(' '));
  t.match(p.output(), message, args.join(' '));
  t.match(p.output(), /Run "actorserve serve --help" for usage\.\n$/);
  t.notMatch(p.output(), /generating|started on devices|listening/, 'nothing was loaded or started');
}

t.test('serve checks flags and config before any model loads', async (t) => {
  fx.config('add', ADD_CONFIG);
  fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
  const here = ['--servable-dir', fx.dir];
  const missing = path.join(fx.dir, 'no-such-dir');
  await refused(t, ['--servable-dir', missing], new RegExp(`actorserve: the servable directory ${missing} does not exist\n`));
  await refused(t, [...here, '--servables', 'nope'], /servable 'nope': folder .*nope does not exist; servables in .*: add\n/);
  await refused(t, [...here, '--servables', 'ad'], /servable 'ad': folder .* does not exist \(did you mean 'add'\?\)/);
  await refused(t, [...here, '--no-rest', '--no-grpc'], /both transports are off/);
  await refused(t, [...here, '--dec-key-file', path.join(fx.dir, 'no.key')], /servable 'add': the key file .*no\.key \(--dec-key-file \/ decKeyFile\) does not exist/);
  await refused(t, [...here, '--rest-address', 'localhost'], /RESTful server address "localhost" is invalid: it has no port/);
  await refused(t, [...here, '--grpc-address', '::1:5500'], /gRPC server address "::1:5500" is invalid: an IPv6 host must be in brackets/);
  const config = path.join(fx.dir, 'tls.yaml');
  writeFileSync(config, `rest:\n  address: 127.0.0.1:0\n  ssl: { certificate: missing.pem, privateKey: missing.key }\ngrpc: null\n`);
  await refused(t, [...here, '--config', config], new RegExp(`RESTful server TLS: certificate file ${path.join(fx.dir, 'missing.pem')} cannot be read`));
  const off = path.join(fx.dir, 'off.yaml');
  writeFileSync(off, 'rest: null\ngrpc: null\n');
  await refused(t, [...here, '--config', off], /both transports are off/);
});

t.test('one "listening" line per transport', async (t) => {
  fx.config('add', ADD_CONFIG);
  fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
  const p = runCli(['serve', '--servable-dir', fx.dir, '--rest-address', '127.0.0.1:0', '--grpc-address', '127.0.0.1:0']);
  await p.waitFor(/serving add from/);
  p.child.kill('SIGTERM');
  t.equal(await p.exited, 0);
  const lines = p.output().split('\n').filter((l) => /listening/i.test(l));
  t.equal(lines.length, 2, lines.join('\n'));
  t.match(p.output(), REST_LISTENING);
  t.match(p.output(), /gRPC server listening on 127\.0\.0\.1:\d+/);
});
