/**
 * Child processes of the perf suite: a target server that prints `READY {json}` when it
 * listens and stops on SIGTERM, or a job that prints `RESULT {json}` and exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface Running {
  readonly name: string;
  readonly info: Record<string, string>;
  readonly process: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

function tail(s: string, n = 2000): string {
  return s.length > n ? `…${s.slice(-n)}` : s;
}

function launch(script: string, args: readonly string[], cwd: string): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [script, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    if (err.length > 64_000) err = err.slice(-32_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

/** Starts a target and waits for its READY line. */
export async function startTarget(name: string, script: string, args: readonly string[], cwd: string, timeoutMs = 180_000): Promise<Running> {
  const { child, out, err, exited } = launch(script, args, cwd);
  const info = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs} ms; stderr: ${tail(err())}`));
    }, timeoutMs);
    const check = (): void => {
      const m = /^READY (.*)$/m.exec(out());
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve(JSON.parse(m[1]!) as Record<string, string>);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}) before it was ready; stderr: ${tail(err())}`));
    });
  });
  return {
    name,
    info,
    process: child,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Runs a job to completion and returns its RESULT. */
export async function runJob<T>(name: string, script: string, args: readonly string[], cwd: string): Promise<T> {
  const { out, err, exited } = launch(script, args, cwd);
  const code = await exited;
  const m = /^RESULT (.*)$/m.exec(out());
  if (code !== 0 || !m) throw new Error(`${name} failed (exit ${code}); stderr: ${tail(err())}`);
  return JSON.parse(m[1]!) as T;
}
