/**
 * The server under soak: `actorserve serve` in a child process, as a user runs it, REST and
 * gRPC on loopback ports the system picks (read back from its "listening" log lines).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

export interface ServerProcess {
  readonly pid: number;
  readonly rest: { readonly host: string; readonly port: number };
  readonly grpc: { readonly authority: string };
  /** Set once the process has exited. */
  exit(): { readonly code: number | null; readonly signal: string | null } | undefined;
  /** The last lines it printed. */
  output(): string;
  /** SIGTERM (a drain), then SIGKILL after `graceMs`; resolves with how it exited. */
  stop(graceMs: number): Promise<{ readonly code: number | null; readonly signal: string | null }>;
}

const REST_LISTENING = /RESTful server listening on http:\/\/127\.0\.0\.1:(\d+)/;
const GRPC_LISTENING = /gRPC server listening on 127\.0\.0\.1:(\d+)/;
const SERVING = /serving .* from /;

export async function startServer(projectRoot: string, args: readonly string[], startTimeoutMs: number): Promise<ServerProcess> {
  const bin = path.join(projectRoot, 'bin', 'actorserve.js');
  const child = spawn(process.execPath, [bin, 'serve', '--rest-address', '127.0.0.1:0', '--grpc-address', '127.0.0.1:0', ...args], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: string): void => {
    out += d;
    if (out.length > 64_000) out = out.slice(-32_000);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  let exited: { code: number | null; signal: string | null } | undefined;
  const exitedP = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }),
  );
  const until = Date.now() + startTimeoutMs;
  while (!SERVING.test(out)) {
    if (exited) throw new Error(`actorserve serve exited (code ${exited.code}) before serving:\n${out.slice(-3000)}`);
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`actorserve serve did not start within ${startTimeoutMs} ms:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const restPort = Number(REST_LISTENING.exec(out)?.[1]);
  const grpcPort = Number(GRPC_LISTENING.exec(out)?.[1]);
  return {
    pid: child.pid!,
    rest: { host: '127.0.0.1', port: restPort },
    grpc: { authority: `127.0.0.1:${grpcPort}` },
    exit: () => exited,
    output: () => out,
    async stop(graceMs) {
      if (exited) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const e = await exitedP;
      clearTimeout(timer);
      return e;
    },
  };
}
