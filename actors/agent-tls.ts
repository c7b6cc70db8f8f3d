/**
 * TLS on the agent link. Both ends take the `sslConfig` the REST and gRPC servers take
 * (engine/ssl-config.ts: certificate, privateKey, optional customCa and verifyClient), because
 * both ends listen and both dial: the ranks dial the coordinator (AcquireConfig, Register,
 * Heartbeat, Exit) and the coordinator dials each rank (PredictStream, Exit).
 *
 * - listening, an end presents `certificate` / `privateKey`; with `verifyClient` it requires the
 *   dialing end's certificate, chained to `customCa` (mutual TLS);
 * - dialing, an end verifies the other's certificate against `customCa` (the system's roots
 *   without it) and presents its own certificate (used when the other end verifies clients).
 *
 * Without an sslConfig the link is plaintext, as before. The files are checked here, once, with
 * the transports' check: a missing or mismatched file is a clear error before anything listens.
 */
import * as grpc from '@grpc/grpc-js';
import { ServingError } from '../engine/errors.js';
import { type SSLConfig, checkSslConfig } from '../engine/ssl-config.js';

export interface AgentCredentials {
  /** Whether the link uses TLS. */
  readonly tls: boolean;
  readonly server: grpc.ServerCredentials;
  readonly channel: grpc.ChannelCredentials;
}

/** The credentials of one end; `where` starts error messages ("distributed.startupAgents: sslConfig"). */
export function agentCredentials(ssl: SSLConfig | undefined, where: string): AgentCredentials {
  if (!ssl) return { tls: false, server: grpc.ServerCredentials.createInsecure(), channel: grpc.credentials.createInsecure() };
  const pem = checkSslConfig(ssl, where);
  try {
    return {
      tls: true,
      server: grpc.ServerCredentials.createSsl(pem.customCa ?? null, [{ cert_chain: pem.certificate, private_key: pem.privateKey }], ssl.verifyClient === true),
      channel: grpc.credentials.createSsl(pem.customCa ?? null, pem.privateKey, pem.certificate),
    };
  } catch (err) {
    throw new ServingError('E_INVALID_ARGUMENT', `${where}: the certificate, private key or CA could not be loaded (${(err as Error).message}); check they are PEM files`);
  }
}

/** What grpc-js reports when a TLS handshake fails (an untrusted or unnamed certificate, TLS against plaintext). */
const TLS_FAILURE = /certificate|\bSSL|\bTLS|handshake|self.signed|unable to verify|wrong version number|alert/i;

/** Whether a failed call failed in the TLS handshake: retrying will not help, so callers give up at once. */
export function tlsFailure(err: unknown): boolean {
  return err instanceof Error && TLS_FAILURE.test(err.message);
}

/** A failed call to the other end, for an error message, with what to check when TLS may be the cause. */
export function linkFailure(err: unknown, tls: boolean): string {
  const message = err instanceof Error ? err.message : String(err);
  if (tlsFailure(err)) {
    return `TLS handshake failed: ${message}; the other end's certificate must chain to sslConfig.customCa (the system's roots without it) and name the address dialed`;
  }
  if (tls) return `${message}; the link uses TLS: if the other end verifies clients (verifyClient), this end's certificate must chain to its customCa and allow client authentication`;
  return `${message}; the link is plaintext here: if the coordinator was started with an sslConfig (TLS), the agents need one too`;
}
