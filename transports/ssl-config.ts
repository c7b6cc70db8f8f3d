/**
 * The server-side TLS settings both transports take, and their start-up check: every file must
 * be readable, and `verifyClient` (mutual TLS) needs `customCa`. Problems are clear
 * E_INVALID_ARGUMENT errors naming the transport and the field.
 */
import { readFileSync } from 'node:fs';
import { ServingError } from '../engine/errors.js';

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

/** `server` names the transport in messages ("RESTful server", "gRPC server"). */
export function checkSslConfig(ssl: SSLConfig, server: string): void {
  const bad = (message: string): ServingError => new ServingError('E_INVALID_ARGUMENT', `${server} sslConfig: ${message}`);
  const readable = (field: keyof SSLConfig, path: unknown): void => {
    if (typeof path !== 'string' || path.length === 0) throw bad(`${field} must be the path of a PEM file`);
    try {
      readFileSync(path, { flag: 'r' });
    } catch (err) {
      throw bad(`${field} file ${path} cannot be read: ${(err as Error).message}`);
    }
  };
  readable('certificate', ssl.certificate);
  readable('privateKey', ssl.privateKey);
  if (ssl.verifyClient !== undefined && typeof ssl.verifyClient !== 'boolean') throw bad('verifyClient must be a boolean');
  if (ssl.verifyClient && ssl.customCa === undefined) throw bad('verifyClient needs customCa, the CA that client certificates must chain to');
  if (ssl.customCa !== undefined) readable('customCa', ssl.customCa);
}
