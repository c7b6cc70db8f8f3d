/**
 * Where a client command connects (`actorserve bench` and `actorserve infer` read it the same
 * way): `host:port`, `host` (the protocol's default port), `[::1]:port`, the same behind
 * `http://` or `grpc://` (the scheme is decoration: the command's protocol decides what is
 * spoken; a path after the port is ignored), or `unix:/path/to/socket` (`unix:///path` too).
 * TLS schemes are refused: TLS is a flag of the command that supports it.
 */

export type TargetAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly hostText: string }
  | { readonly kind: 'unix'; readonly path: string };

/** A target that cannot be read: a usage error of the command. */
export class TargetError extends Error {}

const FORMS = 'use host:port, http://host:port, grpc://host:port or unix:/path';

/**
 * Parses `target`; `defaultPort` is used when it names none; `tlsAdvice` completes the message
 * for a TLS scheme. `hostText` keeps IPv6 brackets (`[::1]`), `host` drops them.
 */
export function parseTargetAddress(target: string, defaultPort: number, tlsAdvice: string): TargetAddress {
  if (target.startsWith('unix:')) {
    const socketPath = target.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
    if (!socketPath) throw new TargetError(`the target '${target}' names no socket path`);
    return { kind: 'unix', path: socketPath };
  }
  let rest = target;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(target);
  if (scheme) {
    const s = scheme[1]!.toLowerCase();
    if (s === 'https' || s === 'grpcs') throw new TargetError(`TLS targets (${s}://) ${tlsAdvice}`);
    if (s !== 'http' && s !== 'grpc') throw new TargetError(`the target '${target}' has an unknown scheme '${s}://' (${FORMS})`);
    rest = target.slice(scheme[0].length);
  }
  rest = rest.replace(/\/.*$/, '');
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/]+)(?::(\d+))?$/.exec(rest);
  if (!m) throw new TargetError(`cannot read the target '${target}' (${FORMS})`);
  const hostText = m[1]!;
  const port = m[2] !== undefined ? Number(m[2]) : defaultPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TargetError(`the target '${target}' has a bad port`);
  return { kind: 'tcp', host: hostText.replace(/^\[|\]$/g, ''), port, hostText };
}
