/**
 * The gRPC `Client`'s options as a schema (engine/option-schema.ts): their kinds, limits,
 * defaults and docs, written once; unknown keys are refused with the closest known one.
 */
import { type OptionsIn, checkOptions, integer, invalidArgument, map, number, object, scalar } from '../../engine/option-schema.js';
import { CLIENT_SSL_OPTIONS } from './client-ssl-config.js';

export const CLIENT_OPTIONS = {
  versionNumber: integer({ min: 0, default: 0, doc: 'the servable version to call; 0 = the newest loaded' }),
  sslConfig: object(CLIENT_SSL_OPTIONS, { doc: 'TLS (SSLConfig(...) or a plain object); plaintext when absent' }),
  timeoutMs: number({ min: 0, exclusiveMin: true, doc: "deadline of each call in milliseconds, sent to the server (default: none; the servable's default applies)" }),
  maxMsgMbSize: number({ min: 0, exclusiveMin: true, max: 2047, default: 512, doc: "largest message sent or received, in MiB (MindSpore's client default)" }),
  channelOptions: map(scalar({ doc: 'a grpc-js channel option value' }), { doc: "extra grpc-js channel options (e.g. 'grpc.keepalive_time_ms', 'grpc.ssl_target_name_override')" }),
} as const;

export type ClientOptions = OptionsIn<typeof CLIENT_OPTIONS>;

/** The options checked, defaults filled in; throws E_INVALID_ARGUMENT ("Client options: ..."). */
export function clientSettings(options: ClientOptions) {
  return checkOptions(CLIENT_OPTIONS, options, invalidArgument('Client options'));
}
