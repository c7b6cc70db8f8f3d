/**
 * `startRestfulServer`'s options: the schema (kinds, limits, defaults, docs; engine/option-schema.ts)
 * and the settings the server runs with, derived from it. `actorserve serve` takes its `rest`
 * config keys and flags from the same schema.
 */
import { type OptionsIn, boolean, checkOptions, fn, integer, invalidArgument, number } from '../../engine/option-schema.js';
import { MIB, SERVER_OPTIONS } from '../server-options.js';
import { type SSLConfig, type TlsPem, checkSslConfig } from '../ssl-config.js';
import type { InstancesParser } from './json-codec.js';

export const REST_SERVER_OPTIONS = {
  sslConfig: { ...SERVER_OPTIONS.sslConfig, doc: 'HTTPS with these files; plain HTTP when absent' },
  maxMsgMbSize: { ...SERVER_OPTIONS.maxMsgMbSize, doc: "largest request body in MiB (MindSpore's default); larger bodies get 413" },
  maxBodyBytes: integer({ min: 0, max: 512 * MIB, doc: 'largest request body in bytes; overrides maxMsgMbSize (tests use it for exact limits)' }),
  maxHeaderBytes: integer({ min: 256, default: 16 * 1024, doc: 'largest request line + headers in bytes; larger requests get 431' }),
  closeTimeoutMs: { ...SERVER_OPTIONS.closeTimeoutMs, doc: 'how long close() waits for requests in flight before cutting them off' },
  bodyTimeoutMs: number({ min: 0, exclusiveMin: true, default: 60_000, doc: 'a request body must arrive completely within this time, else 408' }),
  controlApi: boolean({
    default: false,
    doc: 'serve the repository index and the load/unload control API (GET /repository/index, POST /repository/servables/<name>/load|unload); whoever reaches the port can then unload servables',
  }),
  // A replacement must keep the contract of native/index.ts `parseInstances` (the C++ addon or
  // its JS twin); a plain Error it throws becomes a 400 with its message.
  parseInstances: fn<InstancesParser>()({ doc: 'step 1 of JSON decoding, body → ParsedRequest (default: the native parser)' }),
} as const;

export type RestServerOptions = OptionsIn<typeof REST_SERVER_OPTIONS>;

/** What the server runs with: the options checked, defaults filled in, TLS files read. */
export interface RestSettings {
  readonly ssl: SSLConfig | undefined;
  /** The TLS files' contents, read once by the start-up check (uWS reads the files itself). */
  readonly pem: TlsPem | undefined;
  readonly bodyLimit: number;
  readonly maxHeaderBytes: number;
  readonly closeTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly parseInstances: InstancesParser | undefined;
  readonly controlApi: boolean;
}

export function restSettings(options: RestServerOptions): RestSettings {
  const o = checkOptions(REST_SERVER_OPTIONS, options, invalidArgument('RESTful server options'));
  return {
    ssl: o.sslConfig,
    pem: o.sslConfig !== undefined ? checkSslConfig(o.sslConfig, 'RESTful server') : undefined,
    bodyLimit: o.maxBodyBytes ?? Math.floor(o.maxMsgMbSize * MIB),
    maxHeaderBytes: o.maxHeaderBytes,
    closeTimeoutMs: o.closeTimeoutMs,
    bodyTimeoutMs: o.bodyTimeoutMs,
    parseInstances: o.parseInstances,
    controlApi: o.controlApi,
  };
}
