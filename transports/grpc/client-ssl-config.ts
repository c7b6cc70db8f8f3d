/**
 * The client's TLS settings: MindSpore Serving 1.3's client `SSLConfig(certificate, private_key,
 * custom_ca)` as `SSLConfig({ certificate, privateKey, customCa })`, callable with or without
 * `new`, and the files' check the `Client` makes too. All fields are optional: without
 * `customCa` the system's roots verify the server; `certificate` and `privateKey` (mutual TLS)
 * come together.
 *
 *   const client = new Client('localhost:5500', 'add', 'add_common', { sslConfig: SSLConfig({ customCa: 'ca.crt' }) });
 */
import { readFileSync } from 'node:fs';
import { ServingError } from '../../engine/errors.js';
import { type OptionsIn, type Same, checkOptions, invalidArgument, path } from '../../engine/option-schema.js';
import { configFactory } from '../config-factory.js';

export const CLIENT_SSL_OPTIONS = {
  certificate: path({ doc: "path of the client's PEM certificate (mutual TLS; with privateKey)" }),
  privateKey: path({ doc: 'path of the PEM private key (with certificate)' }),
  customCa: path({ doc: "path of the PEM CA bundle the server's certificate must chain to (default: the system's roots)" }),
} as const;

/** Client-side TLS. Without `customCa` the system's default roots verify the server. */
export interface SSLConfig {
  /** Path of the client's PEM certificate, for servers that verify clients (with `privateKey`). */
  certificate?: string;
  /** Path of the client's PEM private key (with `certificate`). */
  privateKey?: string;
  /** Path of the PEM CA bundle the server's certificate must chain to. */
  customCa?: string;
}

// The interface (written out for its docs) and the schema must describe the same object.
const sslConfigMatchesSchema: Same<SSLConfig, OptionsIn<typeof CLIENT_SSL_OPTIONS>> = true;
void sslConfigMatchesSchema;

/** The client's `SSLConfig`: callable with or without `new` (MindSpore's Python has no `new`). */
export interface SSLConfigFactory {
  (options?: SSLConfig): Readonly<SSLConfig>;
  new (options?: SSLConfig): Readonly<SSLConfig>;
  readonly prototype: Readonly<SSLConfig>;
}

/** The PEM contents grpc-js takes (null where a field is absent). */
export interface ClientTlsFiles {
  readonly customCa: Buffer | null;
  readonly privateKey: Buffer | null;
  readonly certificate: Buffer | null;
}

/**
 * Reads an SSLConfig's files: `certificate` and `privateKey` must come together, each file must
 * be readable. `where` starts the messages ("SSLConfig", "Client: sslConfig").
 */
export function clientTlsFiles(ssl: SSLConfig, where: string): ClientTlsFiles {
  const bad = (message: string): ServingError => new ServingError('E_INVALID_ARGUMENT', `${where}: ${message}`);
  if ((ssl.certificate === undefined) !== (ssl.privateKey === undefined)) throw bad('certificate and privateKey must be given together');
  const read = (field: keyof SSLConfig): Buffer | null => {
    const file = ssl[field];
    if (file === undefined) return null;
    try {
      return readFileSync(file);
    } catch (err) {
      throw bad(`${field} file ${file} cannot be read: ${(err as Error).message}`);
    }
  };
  return { customCa: read('customCa'), privateKey: read('privateKey'), certificate: read('certificate') };
}

/**
 * Client TLS settings, checked now (option kinds, unknown keys with the closest known one,
 * certificate with privateKey, readable files). Returns a frozen object (`instanceof SSLConfig`
 * holds) for the Client's `sslConfig`, which takes a plain object as well.
 */
export const SSLConfig = configFactory<SSLConfig>('SSLConfig', '{ certificate, privateKey, customCa }', true, (options) => {
  const settings: SSLConfig = checkOptions(CLIENT_SSL_OPTIONS, options, invalidArgument('SSLConfig'));
  clientTlsFiles(settings, 'SSLConfig');
  return settings;
}) as SSLConfigFactory;
