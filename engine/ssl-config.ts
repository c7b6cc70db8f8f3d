/**
 * The server-side TLS settings (`sslConfig`) of every listener that takes them: the REST and
 * gRPC transports, and both ends of a distributed servable's agent link (the coordinator's
 * Coordinator service and the ranks' Agent services, which also dial each other). Their check:
 * every file must be readable and hold what its field says (PEM certificates, a PEM private key
 * that matches the certificate), and `verifyClient` (mutual TLS) needs `customCa`. Problems are
 * clear E_INVALID_ARGUMENT errors naming the caller, the field and the file.
 *
 * `server.SSLConfig(...)` (transports/ssl-config.ts) builds checked ones.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ServingError } from './errors.js';
import { type OptionsIn, type Same, boolean, path } from './option-schema.js';

export const SSL_CONFIG_OPTIONS = {
  certificate: path({ required: true, doc: 'PEM certificate (chain)' }),
  privateKey: path({ required: true, doc: 'PEM private key' }),
  customCa: path({ doc: 'PEM CA bundle that client certificates must chain to (needed with verifyClient)' }),
  verifyClient: boolean({ doc: 'mutual TLS: require a client certificate signed by customCa' }),
} as const;

export interface SSLConfig {
  /** Path of the PEM certificate (chain). */
  certificate: string;
  /** Path of the PEM private key. */
  privateKey: string;
  /** Path of the PEM CA bundle that client certificates must chain to (needed with `verifyClient`). */
  customCa?: string;
  /** Mutual TLS: require and verify a client certificate signed by `customCa`. */
  verifyClient?: boolean;
}

// SSLConfig (part of the public API, written out for its docs) and the schema must describe the same object.
const sslConfigMatchesSchema: Same<SSLConfig, OptionsIn<typeof SSL_CONFIG_OPTIONS>> = true;
void sslConfigMatchesSchema;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** The contents of an SSLConfig's files, as checked (the servers build their TLS contexts from them). */
export interface TlsPem {
  readonly certificate: Buffer;
  readonly privateKey: Buffer;
  readonly customCa?: Buffer;
}

/**
 * `where` starts the messages ("RESTful server sslConfig", "gRPC server sslConfig",
 * "server.SSLConfig"). Returns the files read.
 */
export function checkSslConfig(ssl: SSLConfig, where: string): TlsPem {
  const bad = (message: string): ServingError => new ServingError('E_INVALID_ARGUMENT', `${where}: ${message}`);
  const read = (field: keyof SSLConfig, path: unknown): Buffer => {
    if (typeof path !== 'string' || path.length === 0) throw bad(`${field} must be the path of a PEM file`);
    try {
      return readFileSync(path, { flag: 'r' });
    } catch (err) {
      throw bad(`${field} file ${path} cannot be read: ${(err as Error).message}`);
    }
  };
  /** The certificates of a PEM file, in order; at least one. */
  const certificates = (field: 'certificate' | 'customCa', path: string, pem: Buffer): X509Certificate[] => {
    const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
    if (blocks.length === 0) throw bad(`${field} file ${path} holds no PEM certificate`);
    return blocks.map((pem) => {
      try {
        return new X509Certificate(pem);
      } catch (err) {
        throw bad(`${field} file ${path} holds a certificate that cannot be parsed: ${(err as Error).message}`);
      }
    });
  };
  const certificatePem = read('certificate', ssl.certificate);
  const [leaf] = certificates('certificate', ssl.certificate, certificatePem);
  const keyPem = read('privateKey', ssl.privateKey);
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw bad(`privateKey file ${ssl.privateKey} holds no usable PEM private key: ${(err as Error).message}`);
  }
  if (!leaf!.checkPrivateKey(key)) throw bad(`privateKey file ${ssl.privateKey} does not match the certificate in ${ssl.certificate}`);
  if (ssl.verifyClient !== undefined && typeof ssl.verifyClient !== 'boolean') throw bad('verifyClient must be a boolean');
  if (ssl.verifyClient && ssl.customCa === undefined) throw bad('verifyClient needs customCa, the CA that client certificates must chain to');
  if (ssl.customCa === undefined) return { certificate: certificatePem, privateKey: keyPem };
  const customCa = read('customCa', ssl.customCa);
  certificates('customCa', ssl.customCa, customCa);
  return { certificate: certificatePem, privateKey: keyPem, customCa };
}
