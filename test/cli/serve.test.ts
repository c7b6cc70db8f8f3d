// `actorserve serve` (what `npm start` runs) starts the bundled servables and stops on SIGINT with exit 0.
import t from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers/fixtures.js';

const BIN = path.join(ROOT, 'bin', 'actorserve.js');

function run(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

t.test('serve starts the bundled servables, Ctrl-C stops it with exit 0', async (t) => {
  const p = run(['serve', '--device-ids', '0,1']);
  const deadline = Date.now() + 60_000;
  while (!/serving add, add_sub, matmul/.test(p.output()) && Date.now() < deadline && p.child.exitCode === null) {
    await new Promise((r) => setTimeout(r, 50));
  }
  t.match(p.output(), /servable 'add' version 1 started on devices \[0, 1\]/);
  t.match(p.output(), /serving add, add_sub, matmul from/);
  p.child.kill('SIGINT');
  t.equal(await p.exited, 0, 'exit code 0');
  t.match(p.output(), /SIGINT: stopping/);
});

t.test('bad flags and unknown commands exit non-zero with a one-line reason', async (t) => {
  const a = run(['serve', '--no-such-flag']);
  t.equal(await a.exited, 2);
  t.match(a.output(), /actorserve: Unknown option '--no-such-flag'/);
  const b = run(['frobnicate']);
  t.equal(await b.exited, 2);
  t.match(b.output(), /unknown command 'frobnicate'/);
  const c = run(['serve', '--servables', 'missing_one']);
  t.equal(await c.exited, 1);
  t.match(c.output(), /servable 'missing_one': folder .* does not exist/);
  const d = run(['serve', '--help']);
  t.equal(await d.exited, 0);
  t.match(d.output(), /Usage: actorserve serve/);
});
