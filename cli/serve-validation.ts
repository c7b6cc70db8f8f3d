/**
 * What `actorserve serve` checks before any model loads (or is generated), so that a typo in a
 * flag or a config key fails at once with exit 2 instead of after a minute of loading: the
 * servable directory and the servables named in it, the key files, the listen addresses, the
 * TLS files, and that at least one transport is on. Each check says what exists or what is expected.
 */
import { access, constants, stat } from 'node:fs/promises';
import { ServingError } from '../engine/errors.js';
import { closest } from '../engine/option-schema.js';
import { listServableNames, locateServable } from '../engine/servable-dir.js';
import { parseListenAddress } from '../transports/listen-address.js';
import { type SSLConfig, checkSslConfig } from '../transports/ssl-config.js';
import { UsageError } from './args.js';

/** A transport as `serve` will start it: null = off. */
interface ListenerPlan {
  readonly address: string;
  readonly ssl?: SSLConfig | undefined;
}

export interface ServePlanToCheck {
  readonly servableDirectory: string;
  readonly servables: readonly { readonly name: string; readonly decKeyFile?: string | undefined }[];
  readonly rest: ListenerPlan | null;
  readonly grpc: ListenerPlan | null;
}

/** The servable directory exists and is a folder (the flag's or the config's; said as "does not exist"). */
export async function checkServableDirectory(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined) throw new UsageError(`the servable directory ${dir} does not exist`);
  if (!st.isDirectory()) throw new UsageError(`the servable directory ${dir} is not a folder`);
}

/** Every check of the module; throws a UsageError (exit 2) naming the first problem. */
export async function checkServePlan(p: ServePlanToCheck): Promise<void> {
  if (p.rest === null && p.grpc === null) {
    throw new UsageError('both transports are off (--no-rest and --no-grpc, or rest: null and grpc: null in the config): nothing would serve');
  }
  await checkServables(p.servableDirectory, p.servables.map((s) => s.name));
  for (const s of p.servables) {
    if (s.decKeyFile !== undefined && !(await readable(s.decKeyFile))) {
      throw new UsageError(`servable '${s.name}': the key file ${s.decKeyFile} (--dec-key-file / decKeyFile) does not exist or cannot be read`);
    }
  }
  for (const [name, listener] of [
    ['RESTful server', p.rest],
    ['gRPC server', p.grpc],
  ] as const) {
    if (listener === null) continue;
    checkAddress(listener.address, name);
    if (listener.ssl) checkTlsFiles(listener.ssl, name);
  }
}

/** Each named servable has its folder and servable_config.ts; otherwise say which servables exist. */
async function checkServables(dir: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    try {
      await locateServable(dir, name);
    } catch (err) {
      if (!(err instanceof ServingError)) throw err;
      const present = await listServableNames(dir);
      const guess = closest(name, present);
      const there = present.length > 0 ? `servables in ${dir}: ${present.join(', ')}` : `${dir} holds no servable folder (a folder with a servable_config.ts)`;
      throw new UsageError(`${err.message}${guess ? ` (did you mean '${guess}'?)` : ''}; ${there}`);
    }
  }
}

function checkAddress(address: string, server: string): void {
  try {
    parseListenAddress(address, server);
  } catch (err) {
    if (err instanceof ServingError) throw new UsageError(err.message);
    throw err;
  }
}

/** The same check `startRestfulServer`/`startGrpcServer` make (readable PEM files, the key matching the certificate, verifyClient with customCa), made before any model loads. */
function checkTlsFiles(ssl: NonNullable<ListenerPlan['ssl']>, server: string): void {
  try {
    checkSslConfig(ssl, `${server} TLS`);
  } catch (err) {
    throw err instanceof ServingError ? new UsageError(err.message) : err;
  }
}

function readable(file: string): Promise<boolean> {
  return access(file, constants.R_OK).then(
    () => true,
    () => false,
  );
}
