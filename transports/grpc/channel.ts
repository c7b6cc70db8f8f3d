/**
 * The client side's gRPC channel, shared by `Client` (MindSpore's API and ours) and
 * `KServeClient` (the Open Inference Protocol): the checked options, TLS credentials, message
 * limits, and a failed call's status read back as a ServingError.
 */
import { type ChannelCredentials, Client as GrpcClient, type ServiceError, credentials } from '@grpc/grpc-js';
import { ServingError } from '../../engine/errors.js';
import { errorOfStatus } from './codec.js';
import { type ClientOptions, clientSettings } from './client-options.js';
import { type SSLConfig, clientTlsFiles } from './client-ssl-config.js';
import { ERROR_CODE_TRAILER, protos } from './proto.js';

const MIB = 1024 * 1024;

export function bad(message: string, who = 'Client'): ServingError {
  return new ServingError('E_INVALID_ARGUMENT', `${who}: ${message}`);
}

export function nonEmpty(name: string, value: unknown, who = 'Client'): string {
  if (typeof value !== 'string') throw bad(`${name} must be a string, got ${typeof value}`, who);
  if (value.length === 0) throw bad(`${name} must not be empty`, who);
  return value;
}

function channelCredentials(ssl: SSLConfig | undefined): ChannelCredentials {
  if (ssl === undefined) return credentials.createInsecure();
  const pem = clientTlsFiles(ssl, 'Client: sslConfig');
  return credentials.createSsl(pem.customCa, pem.privateKey, pem.certificate);
}

/** A channel to `address` with the options checked (defaults filled in), and those settings. */
export function openChannel(address: string, options: ClientOptions): { grpc: GrpcClient; settings: ReturnType<typeof clientSettings> } {
  const settings = clientSettings(options);
  const maxBytes = Math.floor(settings.maxMsgMbSize * MIB);
  const grpc = new GrpcClient(address, channelCredentials(settings.sslConfig), {
    'grpc.max_send_message_length': maxBytes,
    'grpc.max_receive_message_length': maxBytes,
    ...settings.channelOptions,
  });
  protos(); // fail here, not on the first call, if the protos cannot be loaded
  return { grpc, settings };
}

/** A failed call as a ServingError: the code from the `actorserve-error-code` trailer, else read from the status. */
export function serviceError(err: ServiceError): ServingError {
  return errorOfStatus(err.code, err.details, String(err.metadata?.get(ERROR_CODE_TRAILER)[0] ?? ''));
}

/** The grpc-js deadline of a call started now, from a timeout in milliseconds (none: Infinity). */
export function deadlineOf(timeoutMs: number | undefined): number {
  return timeoutMs !== undefined ? Date.now() + timeoutMs : Infinity;
}
