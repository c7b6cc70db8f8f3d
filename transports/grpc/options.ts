/**
 * `startGrpcServer`'s options: the schema (kinds, limits, defaults, docs; engine/option-schema.ts)
 * and the settings the server runs with, derived from it. `actorserve serve` takes its `grpc`
 * config keys and flags from the same schema.
 */
import { type OptionsIn, checkOptions, integer, invalidArgument } from '../../engine/option-schema.js';
import { MIB, SERVER_OPTIONS } from '../server-options.js';
import { type SSLConfig, type TlsPem, checkSslConfig } from '../ssl-config.js';

/** grpc-js channel options are int32. */
const INT32_MAX = 2 ** 31 - 1;

export const GRPC_SERVER_OPTIONS = {
  sslConfig: SERVER_OPTIONS.sslConfig,
  maxMsgMbSize: { ...SERVER_OPTIONS.maxMsgMbSize, doc: "largest message in MiB, received and sent (MindSpore's default)" },
  maxConcurrentStreams: integer({ min: 1, max: INT32_MAX, default: 256, doc: 'HTTP/2 streams (calls) at once per connection' }),
  keepaliveTimeMs: integer({ min: 1000, max: INT32_MAX, default: 300_000, doc: 'interval of keepalive pings to each client' }),
  keepaliveTimeoutMs: integer({ min: 100, max: INT32_MAX, default: 20_000, doc: 'how long a keepalive ping may wait for its ack before the connection is dropped' }),
  maxConnectionIdleMs: integer({ min: 1000, max: INT32_MAX, default: 1_800_000, doc: 'a connection with no calls for this long is closed with GOAWAY; clients reconnect' }),
  streamWindow: integer({ min: 1, max: 1_000_000, default: 128, doc: 'requests of one PredictStream in the engine at once; reading pauses beyond it' }),
  closeTimeoutMs: SERVER_OPTIONS.closeTimeoutMs,
} as const;

export type GrpcServerOptions = OptionsIn<typeof GRPC_SERVER_OPTIONS>;

/** What the server runs with: the options checked, defaults filled in, TLS files read. */
export interface GrpcSettings {
  readonly ssl: SSLConfig | undefined;
  /** The TLS files' contents, read once by the start-up check. */
  readonly pem: TlsPem | undefined;
  readonly maxMsgBytes: number;
  readonly maxConcurrentStreams: number;
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly maxConnectionIdleMs: number;
  readonly streamWindow: number;
  readonly closeTimeoutMs: number;
}

export function grpcSettings(options: GrpcServerOptions): GrpcSettings {
  const o = checkOptions(GRPC_SERVER_OPTIONS, options, invalidArgument('gRPC server options'));
  return {
    ssl: o.sslConfig,
    pem: o.sslConfig !== undefined ? checkSslConfig(o.sslConfig, 'gRPC server sslConfig') : undefined,
    maxMsgBytes: Math.floor(o.maxMsgMbSize * MIB),
    maxConcurrentStreams: o.maxConcurrentStreams,
    keepaliveTimeMs: o.keepaliveTimeMs,
    keepaliveTimeoutMs: o.keepaliveTimeoutMs,
    maxConnectionIdleMs: o.maxConnectionIdleMs,
    streamWindow: o.streamWindow,
    closeTimeoutMs: o.closeTimeoutMs,
  };
}
