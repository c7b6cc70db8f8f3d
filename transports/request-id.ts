/**
 * Request ids for logs and replies, the same rule on both transports: the client's id when it
 * sends a short printable one (REST `X-Request-Id` header, gRPC `x-request-id` metadata), else
 * a generated UUID.
 */
import { randomUUID } from 'node:crypto';

const PRINTABLE = /^[\x21-\x7e]+$/;

/** The client's id when it is 1–128 printable ASCII characters, else undefined. */
export function clientRequestId(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= 128 && PRINTABLE.test(value) ? value : undefined;
}

/** The client's id (see clientRequestId) or a new UUID. */
export function requestIdOf(value: unknown): string {
  return clientRequestId(value) ?? randomUUID();
}
