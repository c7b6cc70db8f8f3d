/**
 * Listen addresses shared by both transports: `host:port` (IPv4, `[IPv6]`, or `localhost`,
 * which means 127.0.0.1; port 0 = pick a free port) or `unix:/path/to/socket`, and the
 * claiming of a unix socket path (a stale file from a crashed run is removed; a live server
 * or a non-socket file is refused).
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, isIPv4, isIPv6 } from 'node:net';
import { ServingError } from '../engine/errors.js';

export type ListenAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** Longest unix socket path Linux accepts (sun_path holds 108 bytes with the NUL). */
const MAX_UNIX_PATH = 107;

/** Parses `address`; `server` names the transport in messages ("RESTful server", "gRPC server"). */
export function parseListenAddress(address: string, server: string): ListenAddress {
  const bad = (why: string): ServingError =>
    new ServingError(
      'E_INVALID_ARGUMENT',
      `${server} address ${JSON.stringify(address)} is invalid: ${why} (use host:port with an IPv4 host, [IPv6] or localhost, or unix:/path)`,
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
  if (host.length === 0) throw bad('the host is missing');
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
export function formatListenAddress(a: ListenAddress, port: number): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${port}` : `${a.host}:${port}`;
}

/** The address as configured (port 0 stays 0): for messages, and the bind target grpc-js takes. */
export function configuredAddress(a: ListenAddress): string {
  return formatListenAddress(a, a.kind === 'unix' ? 0 : a.port);
}

/**
 * Makes `path` free for a new unix socket: refuses when another server listens on it or when
 * it is not a socket; removes a stale socket file left by a server that died.
 */
export async function claimSocketPath(path: string, server: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) {
    throw new ServingError('E_INVALID_ARGUMENT', `${server} address unix:${path}: the path exists and is not a socket`);
  }
  const live = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new ServingError('E_UNAVAILABLE', `${server} could not bind to unix:${path}: another server is listening there`);
  unlinkSync(path);
}

/**
 * Makes a bound unix socket owner-only (0600): only the serving user can connect. (There is a
 * moment between bind and chmod when the process umask applies; run with a restrictive umask
 * or a private parent folder where that matters.)
 */
export function restrictSocketFile(path: string): void {
  chmodSync(path, 0o600);
}
