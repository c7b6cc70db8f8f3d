/**
 * `actorserve infer`: one request to a gRPC server from the command line, results printed as
 * JSON on stdout.
 *
 *   actorserve infer <address> <servable> <method> --input NAME=VALUE... [--version N]
 *                    [--timeout-ms N] [--ca FILE] [--cert FILE --key FILE]
 *
 * VALUE is `@file.npy` (a NumPy array), `@file` (any other file: a bytes scalar), or JSON: a
 * number, boolean, string, nested list, or `{"dtype", "shape", "data"}`. Plain JSON numbers
 * become int32 when every one is written as an integer, float32 otherwise (REST's rule);
 * `NAME:DTYPE=JSON` picks the dtype. The inputs together form one instance.
 *
 * Output: `{"instances":[{"y":[[2,4],[6,8]]}]}` (a failed instance holds
 * `{"error_code","error_msg"}`), or `{"error_code","error_msg"}` when the request failed.
 * Exit status 0 when every instance succeeded, 1 when anything failed, 2 on a usage error.
 */
import { readFileSync } from 'node:fs';
import { type DType, isDType, isNumericDType } from '../../engine/dtypes.js';
import { ServingError, toServingError } from '../../engine/errors.js';
import type { Tensor } from '../../engine/tensor.js';
import { unknownFlagMessage } from '../../engine/option-schema.js';
import { Client, type SSLConfig } from './client.js';
import { readNpy } from './npy.js';
import { type InputValue, type PlainValue, tensorToPlain, toInputTensor } from './values.js';

export const INFER_USAGE = `usage: actorserve infer <address> <servable> <method> --input NAME=VALUE... [options]

Sends one instance to a gRPC server (MSService/Predict) and prints the outputs as JSON.

  <address>            host:port or unix:/path of the gRPC server
  -i, --input NAME=VALUE
                       one input (repeat for each); VALUE is
                         @file.npy   a NumPy array (little-endian, C order)
                         @file       any other file, sent as a bytes scalar
                         JSON        number, boolean, string, nested list, or
                                     {"dtype": "float16", "shape": [2], "data": [1, 2]}
                       plain JSON numbers are int32 when all are integers, else float32;
                       NAME:DTYPE=JSON picks the dtype (e.g. x:float64=[1, 2])
  --version N          servable version (default 0: the newest)
  --timeout-ms N       deadline of the call
  --ca FILE            TLS: the CA that the server's certificate chains to
  --cert FILE, --key FILE
                       mutual TLS: the client's certificate and key
  -h, --help           this text

Exit status: 0 all instances succeeded, 1 the request or an instance failed, 2 usage error.`;

export interface CommandIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

const DEFAULT_IO: CommandIO = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

class UsageError extends Error {}

interface Parsed {
  address: string;
  servable: string;
  method: string;
  inputs: Record<string, InputValue>;
  versionNumber: number;
  timeoutMs: number | undefined;
  ssl: SSLConfig | undefined;
}

/** Runs `actorserve infer ...`; `argv` is what follows `infer` (a leading 'infer' is skipped). Resolves with the exit status. */
export async function runInferCommand(argv: readonly string[], io: CommandIO = DEFAULT_IO): Promise<number> {
  const args = argv[0] === 'infer' ? argv.slice(1) : [...argv];
  if (args.includes('-h') || args.includes('--help')) {
    io.stdout(`${INFER_USAGE}\n`);
    return 0;
  }
  let parsed: Parsed;
  try {
    parsed = parseArgs(args);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ServingError) {
      io.stderr(`actorserve infer: ${err.message}\n\n${INFER_USAGE}\n`);
      return 2;
    }
    throw err;
  }
  let client: Client;
  try {
    client = new Client(parsed.address, parsed.servable, parsed.method, {
      versionNumber: parsed.versionNumber,
      ...(parsed.timeoutMs !== undefined ? { timeoutMs: parsed.timeoutMs } : {}),
      ...(parsed.ssl ? { sslConfig: parsed.ssl } : {}),
    });
  } catch (err) {
    io.stderr(`actorserve infer: ${(err as Error).message}\n`);
    return 2;
  }
  try {
    const outcomes = await client.inferEach([parsed.inputs]);
    let failed = false;
    const instances = outcomes.map((o) => {
      if (o instanceof ServingError) {
        failed = true;
        return { error_code: o.code, error_msg: o.message };
      }
      const out: Record<string, PlainValue> = {};
      for (const [name, t] of Object.entries(o)) out[name] = tensorToPlain(t);
      return out;
    });
    io.stdout(`${JSON.stringify({ instances })}\n`);
    return failed ? 1 : 0;
  } catch (err) {
    const e = toServingError(err);
    io.stdout(`${JSON.stringify({ error_code: e.code, error_msg: e.message })}\n`);
    return 1;
  } finally {
    client.close();
  }
}

/** The flags `infer` takes (for the suggestion when one is mistyped). */
const INFER_FLAGS = ['input', 'version', 'timeout-ms', 'ca', 'cert', 'key', 'help'];

function parseArgs(args: readonly string[]): Parsed {
  const positional: string[] = [];
  const inputs: Record<string, InputValue> = {};
  let versionNumber = 0;
  let timeoutMs: number | undefined;
  const ssl: SSLConfig = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '-i':
      case '--input': {
        const [name, tensor] = parseInput(value());
        if (Object.hasOwn(inputs, name)) throw new UsageError(`input '${name}' is given twice`);
        inputs[name] = tensor;
        break;
      }
      case '--version':
        versionNumber = integer(arg, value(), 0);
        break;
      case '--timeout-ms':
        timeoutMs = integer(arg, value(), 1);
        break;
      case '--ca':
        ssl.customCa = value();
        break;
      case '--cert':
        ssl.certificate = value();
        break;
      case '--key':
        ssl.privateKey = value();
        break;
      default:
        if (arg.startsWith('-') && arg !== '-') throw new UsageError(unknownFlagMessage(arg, INFER_FLAGS));
        positional.push(arg);
    }
  }
  if (positional.length !== 3) throw new UsageError(`expected <address> <servable> <method>, got ${positional.length} argument${positional.length === 1 ? '' : 's'}`);
  if (Object.keys(inputs).length === 0) throw new UsageError('give at least one --input NAME=VALUE');
  const [address, servable, method] = positional as [string, string, string];
  const useSsl = ssl.customCa !== undefined || ssl.certificate !== undefined || ssl.privateKey !== undefined;
  return { address, servable, method, inputs, versionNumber, timeoutMs, ssl: useSsl ? ssl : undefined };
}

function integer(flag: string, text: string, min: number): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) throw new UsageError(`${flag} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** `name=@file.npy`, `name=@file`, `name=<json>` or `name:dtype=<json>`. */
export function parseInput(spec: string): [string, Tensor] {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new UsageError(`--input ${JSON.stringify(spec)} is not NAME=VALUE`);
  let name = spec.slice(0, eq);
  const text = spec.slice(eq + 1);
  let dtype: DType | undefined;
  const colon = name.indexOf(':');
  if (colon >= 0) {
    const d = name.slice(colon + 1);
    if (!isDType(d)) throw new UsageError(`input '${name}': unknown dtype '${d}'`);
    dtype = d;
    name = name.slice(0, colon);
  }
  if (name.length === 0) throw new UsageError(`--input ${JSON.stringify(spec)} has no name`);
  const where = `input '${name}'`;
  if (text.startsWith('@')) {
    const file = text.slice(1);
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new UsageError(`${where}: cannot read ${file}: ${(err as Error).message}`);
    }
    if (file.toLowerCase().endsWith('.npy')) return [name, readNpy(bytes, `${where} (${file})`)];
    return [name, { dtype: dtype === 'string' ? 'string' : 'bytes', shape: [], data: [bytes] }];
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`${where}: ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text)} is not JSON (quote strings: x='"text"')`);
  }
  return [name, jsonTensor(json, text, dtype, where)];
}

function jsonTensor(json: unknown, text: string, dtype: DType | undefined, where: string): Tensor {
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) return toInputTensor(json, where);
  const shape: number[] = [];
  for (let v: unknown = json; Array.isArray(v); v = v[0]) shape.push(v.length);
  const leaves: unknown[] = [];
  const walk = (v: unknown, dim: number): void => {
    if (dim === shape.length) {
      if (Array.isArray(v)) throw new UsageError(`${where}: the nested lists are ragged`);
      leaves.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) throw new UsageError(`${where}: the nested lists are ragged`);
    for (const x of v) walk(x, dim + 1);
  };
  walk(json, 0);
  const kinds = new Set(leaves.map((v) => typeof v));
  if (kinds.size > 1) throw new UsageError(`${where}: mixes ${[...kinds].join(' and ')} values`);
  const kind = kinds.values().next().value ?? 'number';
  if (kind === 'string') {
    if (dtype !== undefined && isNumericDType(dtype)) throw new UsageError(`${where}: strings cannot be ${dtype}`);
    return toInputTensor({ dtype: dtype ?? 'string', shape, data: leaves as string[] }, where);
  }
  if (kind === 'boolean') return toInputTensor({ dtype: dtype ?? 'bool', shape, data: leaves as boolean[] }, where);
  if (kind !== 'number') throw new UsageError(`${where}: ${kind} values cannot be sent`);
  if (dtype !== undefined && !isNumericDType(dtype)) throw new UsageError(`${where}: numbers cannot be ${dtype}`);
  // int32 unless a number is written with a fraction or an exponent (string literals removed first)
  const floaty = /\d[.eE]|\.\d/.test(text.replace(/"(?:[^"\\]|\\.)*"/g, '""'));
  return toInputTensor({ dtype: dtype ?? (floaty ? 'float32' : 'int32'), shape, data: leaves as number[] }, where);
}
