/**
 * The option fields both servers take, declared once (engine/option-schema.ts): the TLS files,
 * the message size limit (MindSpore's 100 MiB, at most 512) and the close timeout. The REST and
 * gRPC option schemas include them, and the `actorserve serve` config file reuses them.
 */
import { number, object } from '../engine/option-schema.js';
import { SSL_CONFIG_OPTIONS } from './ssl-config.js';

export const SERVER_OPTIONS = {
  sslConfig: object(SSL_CONFIG_OPTIONS, { doc: 'TLS with these files; plaintext when absent' }),
  maxMsgMbSize: number({ min: 0, exclusiveMin: true, max: 512, default: 100, doc: "largest message in MiB (MindSpore's default)" }),
  closeTimeoutMs: number({ min: 0, default: 10_000, doc: 'how long close() lets calls in flight finish before cutting them off' }),
} as const;

export const MIB = 1024 * 1024;
