/**
 * The `actorserve` command line in a child process, as a user runs it: its output collected,
 * `waitFor` a line of it, its exit code.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './fixtures.js';

export const BIN = path.join(ROOT, 'bin', 'actorserve.js');

/** What `serve` prints once REST listens on a TCP port; group 1 is the port. */
export const REST_LISTENING = /RESTful server listening on http:\/\/127\.0\.0\.1:(\d+)/;

/** `actorserve ARGS`, run under `wrap` when given (e.g. `['ip', 'netns', 'exec', NS]`). */
export function runCli(args: string[], wrap: string[] = []) {
  return runProcess([...wrap, process.execPath, BIN, ...args]);
}

/** Any command (`argv[0]` looked up in PATH) in the project root, with the same helpers as `runCli`. */
export function runProcess(argv: string[]) {
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = async (re: RegExp, ms = 90_000): Promise<RegExpMatchArray> => {
    const until = Date.now() + ms;
    while (Date.now() < until && child.exitCode === null) {
      const m = re.exec(out);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${re}; output:\n${out}`);
  };
  return { child, exited, output: () => out, waitFor };
}
