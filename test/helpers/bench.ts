/**
 * What the `actorserve bench` tests share: the command run in this process with its output
 * captured, the shape of a level in its --json document, and an `add` engine to load.
 */
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { runBenchCommand } from '../../dist/cli/bench.js';
import { BUNDLED_SERVABLES } from './fixtures.js';

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `actorserve bench args`; `tty`: stderr claims a terminal; `onStderr` sees stderr so far after each write. */
export async function bench(args: string[], tty = false, onStderr?: (all: string) => void): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const sink = (f: (s: string) => void) => ({ write: (s: string | Uint8Array) => (f(String(s)), true) }) as unknown as NodeJS.WritableStream;
  const err = sink((s) => {
    stderr += s;
    onStderr?.(stderr);
  }) as NodeJS.WritableStream & { isTTY?: boolean };
  if (tty) err.isTTY = true;
  const code = await runBenchCommand(args, { stdout: sink((s) => (stdout += s)), stderr: err });
  return { code, stdout, stderr };
}

/** A level of the --json document. */
export interface Level {
  concurrency: number;
  requests: number;
  ok: number;
  errors: number;
  errorsByKind: Record<string, number>;
  errorSamples: Record<string, string>;
  seconds: number;
  requestsPerSecond: number;
  instancesPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; min: number };
  generator: string;
  generatorCpuSeconds?: number;
  generatorCpuPerRequestUs?: number;
  serverCpuPerRequestUs?: number;
  unreachableFromSeconds?: number;
}

/** An engine serving the bundled `add` servable (its log silenced). */
export async function addEngine(): Promise<ServingServer> {
  await ensureExampleModels(BUNDLED_SERVABLES);
  const engine = new ServingServer();
  engine.log = () => undefined;
  await engine.startServables(new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES, servableName: 'add' }));
  return engine;
}
