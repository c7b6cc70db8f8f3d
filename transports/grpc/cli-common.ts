/**
 * What the gRPC client commands (`actorserve infer`, `actorserve generate`) share: their
 * output streams, usage errors, integer flags, TLS flags, the address as grpc-js takes it, and
 * the probe that reports a REST port given as the gRPC address at once.
 */
import { unknownFlagMessage } from '../../engine/option-schema.js';
import type { SSLConfig } from './client.js';
import { answersHttp1 } from './http1-probe.js';
import { type TargetAddress, parseTargetAddress } from '../target-address.js';

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

/** What `readCommandLine` found besides the command's own flags. */
export interface CommandLine {
  /** The address as typed, and as read (the first positional argument). */
  readonly address: string;
  readonly target: TargetAddress;
  /** The other positional arguments. */
  readonly rest: readonly string[];
  /** The TLS settings, when any of --ca, --cert, --key was given. */
  readonly ssl: SSLConfig | undefined;
  /** --version (0: the newest). */
  readonly versionNumber: number;
  /** --timeout-ms. */
  readonly timeoutMs: number | undefined;
}

/**
 * Walks a client command's arguments: `flag(arg, value)` reads one of the command's own flags
 * and says whether it knew it (`value()` takes the flag's value); --version, --timeout-ms,
 * --ca, --cert and --key are read here; an unknown flag is a UsageError naming the closest of `known`. The positional
 * arguments must be the address then `names` (e.g. ['servable', 'method']).
 */
export function readCommandLine(args: readonly string[], command: string, names: readonly string[], known: readonly string[], flag: (arg: string, value: () => string) => boolean): CommandLine {
  const positional: string[] = [];
  const ssl: SSLConfig = {};
  let versionNumber = 0;
  let timeoutMs: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (flag(arg, value)) continue;
    if (arg === '--version') versionNumber = integer(arg, value(), 0);
    else if (arg === '--timeout-ms') timeoutMs = integer(arg, value(), 1);
    else if (arg === '--ca') ssl.customCa = value();
    else if (arg === '--cert') ssl.certificate = value();
    else if (arg === '--key') ssl.privateKey = value();
    else if (arg.startsWith('-') && arg !== '-') throw new UsageError(unknownFlagMessage(arg, known));
    else positional.push(arg);
  }
  const expected = ['address', ...names];
  if (positional.length !== expected.length) {
    throw new UsageError(`expected ${expected.map((n) => `<${n}>`).join(' ')}, got ${positional.length} argument${positional.length === 1 ? '' : 's'}`);
  }
  const [address, ...rest] = positional as [string, ...string[]];
  const target = parseTargetAddress(address, DEFAULT_GRPC_PORT, `are not read by ${command}: give host:port with --ca (and --cert, --key for mutual TLS)`);
  const tls = ssl.customCa !== undefined || ssl.certificate !== undefined || ssl.privateKey !== undefined;
  return { address, target, rest, ssl: tls ? ssl : undefined, versionNumber, timeoutMs };
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
