/**
 * `actorserve encrypt --key-file K [--mode AES-GCM|AES-CBC] in.onnx out.onnx.enc`: writes a
 * model in the encrypted container (engine/model-crypto.ts documents the format). Serve it
 * with `decKeyFile`/`decMode` in the config or --dec-key-file/--dec-mode on `serve`.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';

import { type CipherMode, encryptModel } from '../engine/model-crypto.js';
import { UsageError, parseArgsStrict } from './args.js';

export const ENCRYPT_USAGE = `Usage: actorserve encrypt --key-file KEY [--mode AES-GCM|AES-CBC] IN OUT

Encrypts a model file for serving with decKey/decMode. KEY is a file holding the raw key:
16, 24 or 32 bytes (AES-128/192/256). The key is never printed.

Options:
  --key-file FILE   the key
  --mode MODE       AES-GCM (default, authenticated) or AES-CBC
  -h, --help        show this help
`;

/** Reads a raw key file (16/24/32 bytes); the key never appears in messages. */
export async function readKeyFile(file: string): Promise<Buffer> {
  let key: Buffer;
  try {
    key = await readFile(file);
  } catch (err) {
    throw new UsageError(`cannot read the key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (![16, 24, 32].includes(key.length)) {
    // `openssl rand -hex 32 > key` is a common slip: say what to do about it
    const hint = /^[0-9a-fA-F]+\s*$/.test(key.toString('latin1')) ? ' (it looks like hex text: store the raw bytes, e.g. `xxd -r -p hex.txt key.bin` or `openssl rand 32 > key.bin`)' : '';
    throw new UsageError(`the key file ${file} holds ${key.length} bytes; a key is 16, 24 or 32 raw bytes${hint}`);
  }
  return key;
}

export function cipherMode(value: string | undefined, flag: string): CipherMode {
  const mode = (value ?? 'AES-GCM').toUpperCase();
  if (mode !== 'AES-GCM' && mode !== 'AES-CBC') throw new UsageError(`${flag} takes AES-GCM or AES-CBC, got '${value}'`);
  return mode;
}

export async function encryptCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgsStrict({
    args: argv,
    options: { 'key-file': { type: 'string' }, mode: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(ENCRYPT_USAGE);
    return 0;
  }
  if (!values['key-file']) throw new UsageError('--key-file is required');
  if (positionals.length !== 2) throw new UsageError('give the input model and the output file');
  const [input, output] = positionals as [string, string];
  const key = await readKeyFile(values['key-file']);
  const mode = cipherMode(values.mode, '--mode');
  let plain: Buffer;
  try {
    plain = await readFile(input);
  } catch (err) {
    throw new UsageError(`cannot read ${input}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const sealed = encryptModel(plain, key, mode);
  plain.fill(0);
  key.fill(0);
  const tmp = `${output}.tmp-${process.pid}`;
  await writeFile(tmp, sealed, { mode: 0o600 });
  await rename(tmp, output);
  process.stdout.write(`wrote ${output} (${mode}, ${sealed.length} bytes)\n`);
  return 0;
}
