/** REST listen addresses: the shared parser (transports/listen-address.ts) with REST's wording. */
import { type ListenAddress, formatListenAddress, parseListenAddress } from '../listen-address.js';

export type { ListenAddress };

export function parseAddress(address: string): ListenAddress {
  return parseListenAddress(address, 'RESTful server');
}

export const formatAddress = formatListenAddress;
