/**
 * Listen addresses: `host:port` (IPv4, `[IPv6]`, or `localhost`, which means 127.0.0.1) with
 * port 0 meaning "pick a free port", or `unix:/path/to/socket`.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ServingError } from '../../engine/errors.js';

export type ListenAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** Longest unix socket path Linux accepts (sun_path holds 108 bytes with the NUL). */
const MAX_UNIX_PATH = 107;

export function parseAddress(address: string): ListenAddress {
  const bad = (why: string): ServingError =>
    new ServingError(
      'E_INVALID_ARGUMENT',
      `RESTful server address ${JSON.stringify(address)} is invalid: ${why} (use host:port with an IPv4 host, [IPv6] or localhost, or unix:/path)`,
    );
  if (typeof address !== 'string') throw bad('it is not a string');
  if (address.startsWith('unix:')) {
    const path = address.slice('unix:'.length);
    if (path.length === 0) throw bad('the unix socket path is empty');
    if (Buffer.byteLength(path) > MAX_UNIX_PATH) throw bad(`the unix socket path is longer than ${MAX_UNIX_PATH} bytes`);
    if (path.includes('\0')) throw bad('the unix socket path holds a NUL byte');
    return { kind: 'unix', path };
  }
  const colon = address.lastIndexOf(':');
  if (colon < 0) throw bad('it has no port');
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(`port ${JSON.stringify(portText)} is not in 0-65535`);
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (!isIPv6(host)) throw bad(`${JSON.stringify(host)} is not an IPv6 address`);
  } else if (host === 'localhost') {
    host = '127.0.0.1';
  } else if (!isIPv4(host)) {
    throw bad(isIPv6(host) ? 'an IPv6 host must be in brackets, as [::1]:port' : `${JSON.stringify(host)} is not an IPv4 address`);
  }
  return { kind: 'tcp', host, port: Number(portText) };
}

/** The address as users write it, with the port actually bound. */
export function formatAddress(a: ListenAddress, port: number): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${port}` : `${a.host}:${port}`;
}
