// `actorserve serve` and repeated stop signals: a repeat within the window (a supervisor that
// signals the whole process group) neither skips the drain nor changes the exit code; a repeat
// after the window still exits at once.
import t from 'tap';
import { ADD_CONFIG, servableFixture } from '../helpers/fixtures.js';
import { REST_LISTENING, runCli as run } from '../helpers/cli.js';
import { addModel } from '../../dist/servables/example-models.js';

const fx = servableFixture('serve-signals');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
t.teardown(() => fx.remove());

/** `serve` with a request held in its stage function for `holdMs`; resolves with the reply's status. */
async function serveHolding(holdMs: number) {
  const p = run(['serve', '--servable-dir', fx.dir, '--servables', 'add', '--rest-address', '127.0.0.1:0', '--no-grpc']);
  const [, port] = await p.waitFor(REST_LISTENING);
  await p.waitFor(/serving add from/);
  // (fractions: a JSON integer would reach the stage function as int32)
  const held = JSON.stringify({ instances: { x1: [[holdMs + 0.5, 1.5], [1.5, 1.5]], x2: [[1, 1], [1, 1]] } });
  const reply = fetch(`http://127.0.0.1:${port}/model/add:slow`, { method: 'POST', body: held }).then(
    (r) => r.status,
    (err: unknown) => `no reply: ${(err as Error).message}`,
  );
  await new Promise((r) => setTimeout(r, 300)); // the request reaches its stage function
  return { p, reply };
}

// Two SIGTERMs can merge into one on their way (standard signals are not queued), so the
// "ignored" line is asserted where the second signal differs from the first.
for (const [first, second] of [['SIGTERM', 'SIGTERM'], ['SIGTERM', 'SIGINT']] as const) {
  t.test(`${first} then ${second} 3 ms later: one drain, the held request answered, exit 0`, async (t) => {
    const { p, reply } = await serveHolding(1_500);
    p.child.kill(first);
    await new Promise((r) => setTimeout(r, 3));
    p.child.kill(second);
    t.equal(await p.exited, 0, 'exit code 0');
    t.equal(await reply, 200, 'the request in flight finished within the drain');
    // (two pending signals are handled in signal-number order, not in the order sent)
    t.match(p.output(), /SIG(TERM|INT): draining/);
    if (second !== first) t.match(p.output(), /SIG(TERM|INT) again within 1000 ms of the first: ignored, the drain goes on/);
    t.match(p.output(), /stopped/);
    t.notMatch(p.output(), /exiting without waiting/);
  });
}

t.test('a repeat after the window exits without waiting (exit 1)', async (t) => {
  const { p, reply } = await serveHolding(60_000);
  p.child.kill('SIGINT');
  await p.waitFor(/SIGINT: draining/);
  await new Promise((r) => setTimeout(r, 1_500));
  p.child.kill('SIGINT');
  t.equal(await p.exited, 1, 'exit code 1');
  t.match(p.output(), /SIGINT again: exiting without waiting/);
  t.match(String(await reply), /^no reply/, 'the held request was cut with the process');
});
