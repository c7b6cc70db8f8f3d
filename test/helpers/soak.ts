/**
 * Runs the soak script (dist/perf/soak/run.js) as CI does, in a child process, and returns its
 * exit code and the JSON summary it prints with --json (perf/soak/report.ts SoakSummary).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { SoakSummary } from '../../dist/perf/soak/report.js';
import { ROOT } from './fixtures.js';

export interface SoakRun {
  readonly code: number | null;
  readonly summary: SoakSummary | undefined;
  /** The script's progress log (stderr), for failure messages. */
  readonly log: string;
}

export function runSoak(args: readonly string[], killAfterMs: number): Promise<SoakRun> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'perf', 'soak', 'run.js'), '--json', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    log += d;
    if (log.length > 200_000) log = log.slice(-100_000);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      let summary: SoakSummary | undefined;
      try {
        summary = JSON.parse(line) as SoakSummary;
      } catch {
        summary = undefined;
      }
      resolve({ code, summary, log });
    }),
  );
}
