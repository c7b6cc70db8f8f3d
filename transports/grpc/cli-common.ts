/**
 * What the gRPC client commands (`actorserve infer`, `actorserve generate`) share: their
 * output streams, usage errors, integer flags, TLS flags, the address as grpc-js takes it, and
 * the probe that reports a REST port given as the gRPC address at once.
 */
import type { SSLConfig } from './client.js';
import { answersHttp1 } from './http1-probe.js';
import type { TargetAddress } from '../target-address.js';

export interface CommandIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const DEFAULT_IO: CommandIO = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

/** A bad command line: exit 2 with one line and a pointer to --help. */
export class UsageError extends Error {}

export const DEFAULT_GRPC_PORT = 5500;

/** `text` as an integer >= `min`, else a UsageError naming `flag`. */
export function integer(flag: string, text: string, min: number): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) throw new UsageError(`${flag} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * Reads a TLS flag (--ca, --cert, --key) into `ssl`; false for any other flag. `value` takes
 * the flag's value off the command line.
 */
export function tlsFlag(arg: string, value: () => string, ssl: SSLConfig): boolean {
  if (arg === '--ca') ssl.customCa = value();
  else if (arg === '--cert') ssl.certificate = value();
  else if (arg === '--key') ssl.privateKey = value();
  else return false;
  return true;
}

/** The TLS settings when any TLS flag was given. */
export function usedTls(ssl: SSLConfig): SSLConfig | undefined {
  return ssl.customCa !== undefined || ssl.certificate !== undefined || ssl.privateKey !== undefined ? ssl : undefined;
}

/** The target as grpc-js takes it. */
export function grpcTarget(a: TargetAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : `${a.hostText}:${a.port}`;
}

/** How long the HTTP/1.1 probe waits for a reply; silence means "not HTTP/1.1". */
const HTTP1_PROBE_MS = 5_000;
export const NOT_GRPC = Symbol('not gRPC');
const NEVER = new Promise<never>(() => undefined);

/**
 * Resolves NOT_GRPC when a plaintext address answers HTTP/1.1 (a REST port would hold a gRPC
 * call until grpc-js gives up on the HTTP/2 handshake); never resolves otherwise. Race it with
 * the call.
 */
export function notGrpc(target: TargetAddress, tls: boolean): Promise<typeof NOT_GRPC> {
  return tls ? NEVER : answersHttp1(target, HTTP1_PROBE_MS).then((http1) => (http1 ? NOT_GRPC : NEVER));
}

/** What to say when the address answers HTTP/1.1. */
export function notGrpcMessage(address: string, command: string): string {
  return `${address} answers HTTP/1.1, not gRPC (is it a REST port?): ${command} speaks gRPC; give the server's gRPC address (serve --grpc-address, default 127.0.0.1:5500)`;
}
