/**
 * The `actorserve serve` configuration: a JSON or YAML file, validated against the schema
 * below (an unknown or misspelled key is an error that names it and suggests the closest
 * known key), then overridden by command-line flags. docs/configuration.md documents it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

export interface SslEntry {
  readonly certificate: string;
  readonly privateKey: string;
  readonly customCa?: string;
  readonly verifyClient?: boolean;
}

export interface ListenerEntry {
  readonly address: string;
  readonly maxMsgMbSize?: number;
  readonly ssl?: SslEntry;
}

export interface BatchingEntry {
  readonly maxBatchSize?: number;
  readonly maxQueueDelayMs?: number;
}

export interface ServableEntry {
  readonly name: string;
  readonly version?: number;
  readonly deviceIds?: readonly number[];
  readonly deviceType?: string;
  readonly numParallelWorkers?: number;
  readonly intraOpThreads?: number;
  readonly maxQueuedRequests?: number;
  readonly defaultDeadlineMs?: number;
  readonly decKeyFile?: string;
  readonly decMode?: 'AES-GCM' | 'AES-CBC';
  readonly batching?: Readonly<Record<string, BatchingEntry>>;
}

export interface ServeConfig {
  readonly servableDirectory?: string;
  readonly servables?: readonly ServableEntry[];
  readonly rest?: ListenerEntry | null;
  readonly grpc?: ListenerEntry | null;
  readonly log?: { readonly format?: 'text' | 'json'; readonly level?: 'debug' | 'info' | 'warn' | 'error'; readonly accessLog?: boolean };
  readonly drainTimeoutMs?: number;
  readonly watchVersionsMs?: number;
}

export class ConfigError extends Error {}

// ---------------------------------------------------------------------------------------------
// A small schema language: enough for this file, with precise paths in messages.

type Schema =
  | { readonly kind: 'string'; readonly enum?: readonly string[] }
  | { readonly kind: 'int'; readonly min?: number; readonly max?: number }
  | { readonly kind: 'number'; readonly min?: number }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'array'; readonly of: Schema }
  | { readonly kind: 'object'; readonly fields: Readonly<Record<string, Schema>>; readonly required?: readonly string[]; readonly nullable?: boolean }
  | { readonly kind: 'map'; readonly of: Schema };

const str = (values?: readonly string[]): Schema => ({ kind: 'string', ...(values ? { enum: values } : {}) });
const int = (min?: number, max?: number): Schema => ({ kind: 'int', ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) });
const num = (min?: number): Schema => ({ kind: 'number', ...(min !== undefined ? { min } : {}) });
const bool: Schema = { kind: 'boolean' };

const SSL: Schema = {
  kind: 'object',
  fields: { certificate: str(), privateKey: str(), customCa: str(), verifyClient: bool },
  required: ['certificate', 'privateKey'],
};
const LISTENER: Schema = {
  kind: 'object',
  nullable: true,
  fields: { address: str(), maxMsgMbSize: num(0), ssl: SSL },
  required: ['address'],
};
export const CONFIG_SCHEMA: Schema = {
  kind: 'object',
  fields: {
    servableDirectory: str(),
    servables: {
      kind: 'array',
      of: {
        kind: 'object',
        required: ['name'],
        fields: {
          name: str(),
          version: int(0),
          deviceIds: { kind: 'array', of: int(0) },
          deviceType: str(['cpu', 'cuda', 'gpu', 'CPU', 'CUDA', 'GPU']),
          numParallelWorkers: int(0, 64),
          intraOpThreads: int(1, 256),
          maxQueuedRequests: int(1),
          defaultDeadlineMs: num(0),
          decKeyFile: str(),
          decMode: str(['AES-GCM', 'AES-CBC']),
          batching: { kind: 'map', of: { kind: 'object', fields: { maxBatchSize: int(1), maxQueueDelayMs: num(0) } } },
        },
      },
    },
    rest: LISTENER,
    grpc: LISTENER,
    log: { kind: 'object', fields: { format: str(['text', 'json']), level: str(['debug', 'info', 'warn', 'error']), accessLog: bool } },
    drainTimeoutMs: num(0),
    watchVersionsMs: num(0),
  },
};

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/** Checks `value` against `schema`; throws a ConfigError naming the path of the first problem. */
export function validate(value: unknown, schema: Schema, where = 'config'): void {
  const fail = (message: string): never => {
    throw new ConfigError(`${where}: ${message}`);
  };
  switch (schema.kind) {
    case 'string':
      if (typeof value !== 'string') fail(`expected a string, got ${typeName(value)}`);
      if (schema.enum && !schema.enum.includes(value as string)) fail(`'${value}' is not one of ${schema.enum.join(', ')}`);
      return;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) fail(`expected an integer, got ${typeName(value)} ${JSON.stringify(value)}`);
      if (schema.min !== undefined && (value as number) < schema.min) fail(`must be >= ${schema.min}`);
      if (schema.max !== undefined && (value as number) > schema.max) fail(`must be <= ${schema.max}`);
      return;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) fail(`expected a number, got ${typeName(value)}`);
      if (schema.min !== undefined && (value as number) < schema.min) fail(`must be >= ${schema.min}`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail(`expected true or false, got ${typeName(value)}`);
      return;
    case 'array':
      if (!Array.isArray(value)) fail(`expected a list, got ${typeName(value)}`);
      (value as unknown[]).forEach((v, i) => validate(v, schema.of, `${where}[${i}]`));
      return;
    case 'map':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`expected a mapping, got ${typeName(value)}`);
      for (const [k, v] of Object.entries(value as object)) validate(v, schema.of, `${where}['${k}']`);
      return;
    case 'object': {
      if (value === null && schema.nullable) return;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`expected a mapping, got ${typeName(value)}`);
      const known = Object.keys(schema.fields);
      for (const [k, v] of Object.entries(value as object)) {
        if (!Object.hasOwn(schema.fields, k)) {
          const guess = closest(k, known);
          fail(`unknown key '${k}'${guess ? ` (did you mean '${guess}'?)` : ` (known keys: ${known.join(', ')})`}`);
        }
        validate(v, schema.fields[k]!, `${where}.${k}`);
      }
      for (const r of schema.required ?? []) if (!Object.hasOwn(value as object, r)) fail(`missing required key '${r}'`);
      return;
    }
  }
}

/**
 * Reads and validates a config file (`.json`, `.yaml` or `.yml`). Relative paths inside it
 * (servableDirectory, key and certificate files) are resolved against the file's folder.
 */
export async function loadConfigFile(file: string): Promise<ServeConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
  validate(value ?? {}, CONFIG_SCHEMA);
  return resolvePaths((value ?? {}) as ServeConfig, path.dirname(path.resolve(file)));
}

function resolvePaths(config: ServeConfig, base: string): ServeConfig {
  const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : path.resolve(base, p));
  const listener = (l: ListenerEntry | null | undefined): ListenerEntry | null | undefined =>
    l && l.ssl
      ? { ...l, ssl: { ...l.ssl, certificate: abs(l.ssl.certificate)!, privateKey: abs(l.ssl.privateKey)!, ...(l.ssl.customCa ? { customCa: abs(l.ssl.customCa)! } : {}) } }
      : l;
  return {
    ...config,
    ...(config.servableDirectory !== undefined ? { servableDirectory: abs(config.servableDirectory)! } : {}),
    ...(config.servables ? { servables: config.servables.map((s) => (s.decKeyFile ? { ...s, decKeyFile: abs(s.decKeyFile)! } : s)) } : {}),
    ...(config.rest !== undefined ? { rest: listener(config.rest) } : {}),
    ...(config.grpc !== undefined ? { grpc: listener(config.grpc) } : {}),
  };
}
