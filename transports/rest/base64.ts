/**
 * Strict base64 (standard alphabet, `=` padding, length a multiple of 4). Node's own decoder
 * skips characters it does not know, which would turn a typo into silently wrong data.
 */
import { badRequest, preview } from './parsed-value.js';

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes `text` into a fresh, 8-byte-aligned buffer (any typed array can view it). */
export function decodeBase64(text: string, where: string): Uint8Array {
  if (text.length % 4 !== 0 || !B64_RE.test(text)) {
    throw badRequest(`${where}: "b64" is not valid base64 (standard alphabet with '=' padding, length a multiple of 4): ${preview(text)}`);
  }
  const decoded = Buffer.from(text, 'base64');
  const out = new Uint8Array(new ArrayBuffer(decoded.byteLength));
  out.set(decoded);
  return out;
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
