/**
 * The option fields both servers take, declared once (engine/option-schema.ts): the TLS files,
 * the message size limit (MindSpore's 100 MiB, at most 512) and the close timeout. The REST and
 * gRPC option schemas include them, and the `actorserve serve` config file reuses them.
 */
import { type OptionsIn, boolean, number, object, path } from '../engine/option-schema.js';
import type { SSLConfig } from './ssl-config.js';

export const SSL_CONFIG_OPTIONS = {
  certificate: path({ required: true, doc: 'PEM certificate (chain)' }),
  privateKey: path({ required: true, doc: 'PEM private key' }),
  customCa: path({ doc: 'PEM CA bundle that client certificates must chain to (needed with verifyClient)' }),
  verifyClient: boolean({ doc: 'mutual TLS: require a client certificate signed by customCa' }),
} as const;

// SSLConfig (ssl-config.ts, part of the public API) and the schema must describe the same object.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sslConfigMatchesSchema: Same<SSLConfig, OptionsIn<typeof SSL_CONFIG_OPTIONS>> = true;
void sslConfigMatchesSchema;

export const SERVER_OPTIONS = {
  sslConfig: object(SSL_CONFIG_OPTIONS, { doc: 'TLS with these files; plaintext when absent' }),
  maxMsgMbSize: number({ min: 0, exclusiveMin: true, max: 512, default: 100, doc: "largest message in MiB (MindSpore's default)" }),
  closeTimeoutMs: number({ min: 0, default: 10_000, doc: 'how long close() lets calls in flight finish before cutting them off' }),
} as const;

export const MIB = 1024 * 1024;
