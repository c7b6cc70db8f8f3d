// `actorserve bench` flags and progress, as a user runs the command (a child process against a
// real REST server in this process): a duration needs its unit, `--warmup 0s` means no warm-up,
// and a long level writes a progress line every few seconds on stderr unless --json.
import t from 'tap';
import type { ServingServer } from '../../dist/server.js';
import { PROGRESS_EVERY_MS } from '../../dist/cli/bench-progress.js';
import { addEngine } from '../helpers/bench.js';
import { runCli } from '../helpers/cli.js';

let engine: ServingServer;
let address = '';

t.before(async () => {
  engine = await addEngine();
  address = (await engine.startRestfulServer('127.0.0.1:0')).address;
});
t.teardown(() => engine?.stop());

const call = ['--servable', 'add', '--method', 'add_common'];

t.test('a duration without its unit is refused with the units to choose from', async (t) => {
  for (const flag of ['--duration', '--warmup', '--timeout']) {
    const p = runCli(['bench', address, ...call, flag, '5']);
    t.equal(await p.exited, 2, flag);
    t.match(p.output(), `actorserve bench: ${flag} needs a unit: 5s, 5ms or 5m, got '5'\n`);
  }
});

t.test('--warmup 0s (and 0ms, 0) is no warm-up', async (t) => {
  for (const warmup of ['0s', '0ms', '0']) {
    const p = runCli(['bench', address, ...call, '--duration', '200ms', '--warmup', warmup, '--concurrency', '1', '--json']);
    t.equal(await p.exited, 0, p.output());
    const doc = JSON.parse(p.output()) as { warmupMs: number; levels: { ok: number }[] };
    t.equal(doc.warmupMs, 0, `--warmup ${warmup}`);
    t.ok(doc.levels[0]!.ok > 0);
  }
});

t.test('a level longer than the progress interval writes progress lines on stderr; --json writes none', async (t) => {
  const seconds = PROGRESS_EVERY_MS / 1000 + 1;
  const p = runCli(['bench', address, ...call, '--duration', `${seconds}s`, '--warmup', '0', '--concurrency', '2', '--generator', 'js']);
  t.equal(await p.exited, 0, p.output());
  t.match(p.output(), /^c=2 {2}\d+\.\d s {2}\d+ ok {2}0 errors {2}\d+ req\/s$/m, 'a progress line within the level');
  t.notOk(p.output().includes('\r') || p.output().includes('\u001b'), 'no terminal control codes when stderr is not a terminal');

  const json = runCli(['bench', address, ...call, '--duration', `${seconds}s`, '--warmup', '0', '--concurrency', '2', '--generator', 'js', '--json']);
  t.equal(await json.exited, 0);
  t.notMatch(json.output(), /^c=2 /m, 'no progress with --json');
  t.ok(JSON.parse(json.output()), 'the output is the JSON document alone');
});
