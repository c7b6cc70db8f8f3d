/**
 * How `actorserve bench` classifies a reply: success, or a Failure whose `kind` groups it in
 * the report (HTTP status, gRPC status, actorserve error code, socket error) with a sample
 * message. Pure functions, shared by the load threads and the preflight request.
 */
import type { WirePredictReply, WireStreamReply } from '../transports/grpc/proto.js';

/** Where a REST target listens. */
export interface RestEndpoint {
  readonly host: string;
  readonly port: number;
  readonly socketPath?: string;
}

/** A failed request: `kind` groups it in the report, `message` is a sample. */
export interface Failure {
  readonly kind: string;
  readonly message: string;
  /** The connection failed (no reply): loops back off briefly instead of spinning. */
  readonly connection?: boolean;
}

const ERROR_MSG = Buffer.from('error_msg');

/** An error thrown by a socket (net, node:http, node:http2) as a Failure. */
export function socketFailure(err: NodeJS.ErrnoException): Failure {
  // node:http2 wraps a connection error in ERR_HTTP2_STREAM_CANCEL with the socket error as cause
  const cause = (err as { cause?: unknown }).cause;
  if (err.code === 'ERR_HTTP2_STREAM_CANCEL' && cause instanceof Error) return socketFailure(cause);
  const code = err.code ?? '';
  const kind =
    code === 'ECONNREFUSED' ? 'connection refused'
    : code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_HTTP2_STREAM_CANCEL' || code === 'ERR_HTTP2_GOAWAY_SESSION' ? 'connection reset'
    : code === 'ENOENT' ? 'no such socket'
    : code === 'ETIMEDOUT' ? 'timeout'
    : code.startsWith('HPE_') ? 'bad HTTP reply'
    : code !== '' ? code
    : 'socket error';
  return { kind, message: err.message, connection: kind !== 'timeout' && kind !== 'bad HTTP reply' };
}

/** A REST reply: undefined when it is a success. `body` is the reply (or its first bytes). */
export function restFailure(status: number, body: Buffer): Failure | undefined {
  if (status === 200) {
    return body.includes(ERROR_MSG) ? { kind: 'instance error', message: preview(body) } : undefined;
  }
  return { kind: `HTTP ${status}`, message: preview(body) };
}

/** The error text of a JSON reply (`error_msg`, or the first instance's), else the text itself. */
function preview(body: Buffer): string {
  const text = body.subarray(0, 4096).toString('utf8');
  try {
    const parsed = JSON.parse(text) as { error_msg?: unknown; instances?: { error_msg?: unknown }[] };
    if (typeof parsed.error_msg === 'string') return parsed.error_msg;
    const inst = parsed.instances?.find((i) => typeof i?.error_msg === 'string');
    if (inst) return String(inst.error_msg);
  } catch {
    // not JSON (msgpack, cut, or plain text): show the printable part
  }
  return text.slice(0, 300).replace(/[^\x20-\x7e]+/g, ' ').replace(/\s+/g, ' ').trim();
}

/** gRPC status names (grpc-js's `status` enum, without importing grpc-js). */
const STATUS_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];
export const GRPC_UNAVAILABLE = 14;

export function grpcFailure(code: number, details: string): Failure {
  return { kind: `gRPC ${STATUS_NAMES[code] ?? code}`, message: details, connection: code === GRPC_UNAVAILABLE };
}

/** MindSpore's ErrorMsg.error_code names. */
const MS_ERRORS: Readonly<Record<number, string>> = {
  1: 'FAILED',
  2: 'INVALID_INPUTS',
  3: 'SYSTEM_ERROR',
  4: 'WORKER_UNAVAILABLE',
  5: 'SERVABLE_UNAVAILABLE',
};

function text(b: Uint8Array | undefined): string {
  return b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8') : '';
}

/**
 * A Predict reply: no error_msg = success; one entry with a non-zero code = the request
 * failed (kind: actorserve's code from the `actorserve-error-codes` trailer when present,
 * else MindSpore's); entries per instance = some instances failed.
 */
export function replyFailure(reply: WirePredictReply, codesTrailer: string): Failure | undefined {
  const errors = reply.error_msg ?? [];
  const failed = errors.findIndex((e) => Number(e.error_code ?? 0) !== 0);
  if (failed < 0) return undefined;
  const e = errors[failed]!;
  const code = codesTrailer.split(',')[failed];
  if (errors.length === 1) {
    return { kind: code ? code : `MindSpore ${MS_ERRORS[Number(e.error_code)] ?? e.error_code}`, message: text(e.error_msg) };
  }
  return { kind: 'instance error', message: text(e.error_msg) };
}

/** A PredictStream reply: the request's error, or the first failed instance's. */
export function streamReplyFailure(reply: WireStreamReply): Failure | undefined {
  if (reply.error) return { kind: reply.error.code || 'stream error', message: reply.error.message ?? '' };
  const bad = (reply.results ?? []).find((r) => r.error);
  return bad ? { kind: 'instance error', message: `${bad.error!.code}: ${bad.error!.message ?? ''}` } : undefined;
}
