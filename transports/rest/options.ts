/**
 * `startRestfulServer`'s options: the schema (kinds, limits, defaults, docs; engine/option-schema.ts)
 * and the settings the server runs with, derived from it. `actorserve serve` takes its `rest`
 * config keys and flags from the same schema.
 */
import { type OptionsIn, boolean, checkOptions, fn, integer, invalidArgument, number } from '../../engine/option-schema.js';
import { ServingError } from '../../engine/errors.js';
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
  maxConnections: integer({
    min: 1,
    doc: 'connections open at once; one more is answered 503 and closed (HTTPS without verifyClient: closed). Absent: no limit but the process\'s file limit. Setting it puts a Node front before uWS (docs/rest.md gives the cost)',
  }),
  strictHttp: boolean({
    default: false,
    doc: 'strict HTTP/1.1 through a Node HTTP front: pipelined requests answered in order, malformed ones 400, a declared body over the limit 413 at once, HTTP/1.0 answered; costs throughput (docs/rest.md)',
  }),
  controlApi: boolean({
    default: false,
    doc: 'serve the repository index and the load/unload control API (GET /repository/index, POST /repository/servables/<name>/load|unload); whoever reaches the port can then unload servables',
  }),
  // A replacement must keep the contract of native/index.ts `parseInstances` (the C++ addon or
  // its JS twin); a plain Error it throws becomes a 400 with its message.
  parseInstances: fn<InstancesParser>()({ doc: 'step 1 of JSON decoding, body → ParsedRequest (default: the native parser)' }),
  // uWS binds with SO_REUSEPORT unless told otherwise, so a second server on a busy port would
  // start and take half the connections; the port is exclusive unless this opts in.
  reusePort: boolean({
    default: false,
    doc: 'share the TCP port with other servers that also set it (the kernel splits connections between them); off: a port in use is refused',
  }),
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
  /** Connections open at once (counted by the Node front); undefined: no limit. */
  readonly maxConnections: number | undefined;
  readonly parseInstances: InstancesParser | undefined;
  /** Strict HTTP/1.1: the Node HTTP front of strict-front.ts parses and forwards every request. */
  readonly strictHttp: boolean;
  /** Bind the TCP port with SO_REUSEPORT (deliberate sharing); false binds it exclusively. */
  readonly reusePort: boolean;
  readonly controlApi: boolean;
}

export function restSettings(options: RestServerOptions): RestSettings {
  const o = checkOptions(REST_SERVER_OPTIONS, options, invalidArgument('RESTful server options'));
  if (o.reusePort && o.sslConfig?.verifyClient) {
    // the client-certificate front is a Node TLS server, and Node 20's net cannot set SO_REUSEPORT
    throw new ServingError('E_INVALID_ARGUMENT', 'RESTful server options: reusePort cannot be combined with sslConfig.verifyClient');
  }
  if (o.reusePort && o.maxConnections !== undefined) {
    // the connection-counting front is a Node server, for the same reason; and each server could only count its own share
    throw new ServingError('E_INVALID_ARGUMENT', 'RESTful server options: reusePort cannot be combined with maxConnections');
  }
  if (o.reusePort && o.strictHttp) {
    throw new ServingError('E_INVALID_ARGUMENT', 'RESTful server options: reusePort cannot be combined with strictHttp');
  }
  return {
    ssl: o.sslConfig,
    pem: o.sslConfig !== undefined ? checkSslConfig(o.sslConfig, 'RESTful server sslConfig') : undefined,
    bodyLimit: o.maxBodyBytes ?? Math.floor(o.maxMsgMbSize * MIB),
    maxHeaderBytes: o.maxHeaderBytes,
    closeTimeoutMs: o.closeTimeoutMs,
    bodyTimeoutMs: o.bodyTimeoutMs,
    maxConnections: o.maxConnections,
    strictHttp: o.strictHttp,
    parseInstances: o.parseInstances,
    reusePort: o.reusePort,
    controlApi: o.controlApi,
  };
}
