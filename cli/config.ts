/**
 * The `actorserve serve` configuration: a JSON or YAML file and command-line flags over it.
 * Its schema is composed from the option schemas of what it starts (engine/start-config.ts,
 * transports/rest/options.ts, transports/grpc/options.ts), so each limit, default and doc is
 * written once; an unknown or misspelled key is an error naming its path and the closest known
 * key. docs/configuration.md documents it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  type Field,
  type Fields,
  type OptionFailure,
  type OptionsIn,
  type OptionsOut,
  boolean,
  checkFileOptions,
  checkOptions,
  fileMessage,
  list,
  number,
  object,
  omitFields,
  oneOf,
  path as pathField,
  string,
} from '../engine/option-schema.js';
import { SERVABLE_START_OPTIONS as START } from '../engine/start-config.js';
import { SSL_CONFIG_OPTIONS } from '../transports/ssl-config.js';
import { REST_SERVER_OPTIONS } from '../transports/rest/options.js';
import { GRPC_SERVER_OPTIONS } from '../transports/grpc/options.js';

export const DEFAULT_REST_ADDRESS = '127.0.0.1:1500';
export const DEFAULT_GRPC_ADDRESS = '127.0.0.1:5500';

export class ConfigError extends Error {}

/**
 * One entry of `servables`: ServableStartConfig's options (a new one is a key here at once), with
 * MindSpore-style names for a file: `name`, `version`, and `decKeyFile` for the key's bytes.
 */
export const SERVABLE_ENTRY_OPTIONS = {
  name: START.servableName,
  version: START.versionNumber,
  ...omitFields(START, 'servableDirectory', 'servableName', 'versionNumber', 'decKey'),
  decKeyFile: pathField({ doc: 'file holding the key of encrypted model files (16, 24 or 32 bytes)' }),
  // distributed servables only (docs/distributed.md): distributed.startServable's options of the same names
  distributedAddress: string({ doc: 'host:port the coordinator of a distributed servable listens on for its agents; without it the servable is left out' }),
  rankTableJsonFile: string({ doc: "a distributed servable's MindSpore rank table; relative: to the servable's folder, else the current directory" }),
  waitAgentsTimeInSeconds: number({ min: 0, doc: 'how long a distributed servable waits for every rank to register; 0 = forever' }),
} as const;

/** The keys of a servable entry that only a distributed servable takes. */
export const DISTRIBUTED_ENTRY_KEYS = ['distributedAddress', 'rankTableJsonFile', 'waitAgentsTimeInSeconds'] as const;

/**
 * A transport's config entry: its address, TLS files under `ssl`, and every data option of its
 * server (hooks such as `parseInstances` are library-only). `null` turns the transport off.
 */
function listener<S extends Fields & { readonly sslConfig: Field }>(server: S, defaultAddress: string) {
  const data = Object.fromEntries(Object.entries(server).filter(([key, f]) => key !== 'sslConfig' && f.kind !== 'function')) as Omit<S, 'sslConfig' | 'parseInstances'>;
  return object(
    {
      address: string({ default: defaultAddress, doc: 'host:port, [::1]:port, or unix:/path' }),
      ssl: object(SSL_CONFIG_OPTIONS, { doc: 'TLS: certificate, privateKey, customCa, verifyClient (mutual TLS)' }),
      ...data,
    },
    // absent = on, at the default address: every key of a listener has a default or is optional
    { nullable: 'kept', default: {} as never, doc: 'null turns it off' },
  );
}

export const LOG_OPTIONS = {
  format: oneOf<'text' | 'json'>()({ values: ['text', 'json'], default: 'text', doc: 'log line format' }),
  level: oneOf<'debug' | 'info' | 'warn' | 'error'>()({ values: ['debug', 'info', 'warn', 'error'], default: 'info', doc: 'lowest level logged' }),
  accessLog: boolean({ default: false, doc: 'log every request (with its request id)' }),
} as const;

export const SERVE_CONFIG_OPTIONS = {
  servableDirectory: pathField({ doc: 'folder of servable folders' }),
  servables: list(object(SERVABLE_ENTRY_OPTIONS, { doc: 'a servable to start' }), { doc: 'servables to start' }),
  rest: listener(REST_SERVER_OPTIONS, DEFAULT_REST_ADDRESS),
  grpc: listener(GRPC_SERVER_OPTIONS, DEFAULT_GRPC_ADDRESS),
  log: object(LOG_OPTIONS, { default: {}, doc: 'logging' }),
  drainTimeoutMs: number({ min: 0, default: 30_000, doc: 'how long a stop waits for in-flight work' }),
  watchVersionsMs: number({ min: 0, default: 0, doc: 'poll for new version folders every N ms and hot-load them; 0 = off' }),
} as const;

/** A config file's content, checked (defaults are applied after flags are merged in). */
export type ServeConfig = OptionsIn<typeof SERVE_CONFIG_OPTIONS>;
export type ServableEntry = OptionsIn<typeof SERVABLE_ENTRY_OPTIONS>;
export type ListenerEntry = Exclude<ServeConfig['rest'], null | undefined>;

/** Config problems as ConfigErrors (exit code 2), worded from `root` (`config.servables[0]: ...`). */
export function configFailure(root = 'config'): OptionFailure {
  return (p) => {
    throw new ConfigError(fileMessage(root, p));
  };
}

/** The config with every default filled in: what `serve` runs with, after flags are written over the file. */
export function resolveServeConfig(config: ServeConfig): OptionsOut<typeof SERVE_CONFIG_OPTIONS> {
  return checkOptions(SERVE_CONFIG_OPTIONS, config, configFailure());
}

/**
 * Reads and checks a config file (`.json`, `.yaml` or `.yml`). Relative paths inside it
 * (servableDirectory, key and certificate files) are resolved against the file's folder.
 */
export async function loadConfigFile(file: string): Promise<ServeConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  const yaml = /\.ya?ml$/i.test(file);
  let value: unknown;
  try {
    value = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
  const base = path.dirname(path.resolve(file));
  return checkFileOptions(SERVE_CONFIG_OPTIONS, value, configFailure(), (p) => path.resolve(base, p));
}
