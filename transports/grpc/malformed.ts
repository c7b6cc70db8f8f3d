/**
 * Request messages that are not valid protobuf. grpc-js answers a request it cannot decode with
 * INTERNAL before any handler runs ("Error deserializing request"), which blames the server for
 * the client's bytes. The services are registered with a decoder that does not throw: it hands
 * the handler a `MalformedMessage`, which the handler refuses as E_INVALID_ARGUMENT
 * (INVALID_ARGUMENT); on a stream, the stream ends with that status, since the message's id
 * cannot be read to answer it alone.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { ServingError } from '../../engine/errors.js';

/** What a handler receives in place of a request whose bytes did not decode. */
export class MalformedMessage {
  constructor(
    /** The rpc's full path, e.g. /inference.GRPCInferenceService/ModelInfer. */
    readonly path: string,
    /** The decoder's reason. */
    readonly reason: string,
  ) {}

  error(): ServingError {
    return new ServingError('E_INVALID_ARGUMENT', `${this.path}: the request message is not valid protobuf (${this.reason})`);
  }
}

/** `service` with each method's request decoder returning a MalformedMessage instead of throwing. */
export function tolerantService(service: ServiceDefinition): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(service)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return decode(bytes);
        } catch (err) {
          return new MalformedMessage(method.path, err instanceof Error ? err.message : String(err));
        }
      },
    };
  }
  return out as ServiceDefinition;
}
