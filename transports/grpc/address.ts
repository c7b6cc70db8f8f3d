/** gRPC listen addresses: the shared parser (transports/listen-address.ts) with gRPC's wording. */
import { type ListenAddress, claimSocketPath as claim, formatListenAddress, parseListenAddress } from '../listen-address.js';

export type GrpcListenAddress = ListenAddress;

export function parseGrpcAddress(address: string): GrpcListenAddress {
  return parseListenAddress(address, 'gRPC server');
}

/** The address as grpc-js binds it. */
export function bindTarget(a: GrpcListenAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : formatListenAddress(a, a.port);
}

export const formatGrpcAddress = formatListenAddress;

export function claimSocketPath(path: string): Promise<void> {
  return claim(path, 'gRPC server');
}
