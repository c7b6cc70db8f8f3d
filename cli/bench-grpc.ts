/**
 * How `actorserve bench` classifies gRPC outcomes: a non-OK status, a Predict reply carrying
 * MindSpore `error_msg` entries, or a PredictStream reply with an error.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { WirePredictReply, WireStreamReply } from '../transports/grpc/proto.js';
import type { Failure } from './bench-worker.js';

const STATUS_NAMES = new Map<number, string>(
  Object.entries(GrpcStatus)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

/** MindSpore's ErrorMsg.error_code names. */
const MS_ERRORS: Readonly<Record<number, string>> = {
  1: 'FAILED',
  2: 'INVALID_INPUTS',
  3: 'SYSTEM_ERROR',
  4: 'WORKER_UNAVAILABLE',
  5: 'SERVABLE_UNAVAILABLE',
};

export function grpcFailure(code: number, details: string): Failure {
  const name = STATUS_NAMES.get(code) ?? String(code);
  return { kind: `gRPC ${name}`, message: details, connection: code === GrpcStatus.UNAVAILABLE };
}

function text(b: Uint8Array | undefined): string {
  return b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8') : '';
}

/**
 * A Predict reply: no error_msg = success; one entry with a non-zero code = the request
 * failed (kind: actorserve's code from the trailer when present, else MindSpore's); entries
 * per instance = some instances failed.
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

export function streamReplyFailure(reply: WireStreamReply): Failure | undefined {
  if (reply.error) return { kind: reply.error.code || 'stream error', message: reply.error.message ?? '' };
  const bad = (reply.results ?? []).find((r) => r.error);
  return bad ? { kind: 'instance error', message: `${bad.error!.code}: ${bad.error!.message ?? ''}` } : undefined;
}
