/**
 * The encrypted model container (`actorserve encrypt`), decrypted only in memory:
 *
 *   offset 0  8 bytes  magic "ASVENC01"
 *   offset 8  1 byte   mode: 1 = AES-GCM, 2 = AES-CBC (PKCS#7 padding)
 *   offset 9  1 byte   IV length n (12 for GCM, 16 for CBC)
 *   offset 10 n bytes  IV / nonce
 *   then, GCM only: 16-byte authentication tag
 *   then      the ciphertext
 *
 * The key size picks AES-128/192/256. Wrong keys, tampering and truncation surface as
 * errors that never include the key.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export type CipherMode = 'AES-GCM' | 'AES-CBC';

const MAGIC = Buffer.from('ASVENC01', 'latin1');
const MODE_BYTE: Record<CipherMode, number> = { 'AES-GCM': 1, 'AES-CBC': 2 };
const TAG_LENGTH = 16;

function algorithm(mode: CipherMode, key: Uint8Array): string {
  const bits = key.byteLength * 8;
  if (bits !== 128 && bits !== 192 && bits !== 256) throw new Error('the key must be 16, 24 or 32 bytes');
  return `aes-${bits}-${mode === 'AES-GCM' ? 'gcm' : 'cbc'}`;
}

/**
 * The error for an encrypted model file loaded without a key, in the library's words. The CLI
 * finds it by this text and names its own flag instead (cli/library-wording.ts).
 */
export const MISSING_KEY_MESSAGE = 'the file is encrypted: set decKey (and decMode) in the ServableStartConfig';

export function isEncryptedModel(bytes: Uint8Array): boolean {
  return bytes.byteLength >= MAGIC.length && Buffer.from(bytes.buffer, bytes.byteOffset, MAGIC.length).equals(MAGIC);
}

export function encryptModel(plain: Uint8Array, key: Uint8Array, mode: CipherMode = 'AES-GCM'): Buffer {
  const iv = randomBytes(mode === 'AES-GCM' ? 12 : 16);
  const cipher = createCipheriv(algorithm(mode, key), key, iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  const tag = mode === 'AES-GCM' ? (cipher as ReturnType<typeof createCipheriv> & { getAuthTag(): Buffer }).getAuthTag() : Buffer.alloc(0);
  return Buffer.concat([MAGIC, Buffer.from([MODE_BYTE[mode], iv.length]), iv, tag, body]);
}

/** Decrypts a container; throws a plain Error with a reason (never the key) on any mismatch. */
export function decryptModel(container: Uint8Array, key: Uint8Array, mode: CipherMode): Buffer {
  const buf = Buffer.from(container.buffer, container.byteOffset, container.byteLength);
  if (!isEncryptedModel(buf)) throw new Error('the file is not an actorserve encrypted model (bad magic)');
  if (buf.length < 10) throw new Error('the encrypted file is truncated');
  const modeByte = buf[8]!;
  if (modeByte !== MODE_BYTE[mode]) {
    const actual = modeByte === 1 ? 'AES-GCM' : modeByte === 2 ? 'AES-CBC' : `unknown (${modeByte})`;
    throw new Error(`the file was encrypted with ${actual}, but decMode is ${mode}`);
  }
  const ivLength = buf[9]!;
  const tagLength = mode === 'AES-GCM' ? TAG_LENGTH : 0;
  const bodyStart = 10 + ivLength + tagLength;
  if (buf.length < bodyStart) throw new Error('the encrypted file is truncated');
  const iv = buf.subarray(10, 10 + ivLength);
  const decipher = createDecipheriv(algorithm(mode, key), key, iv);
  if (mode === 'AES-GCM') (decipher as ReturnType<typeof createDecipheriv> & { setAuthTag(t: Buffer): void }).setAuthTag(buf.subarray(10 + ivLength, bodyStart));
  try {
    return Buffer.concat([decipher.update(buf.subarray(bodyStart)), decipher.final()]);
  } catch {
    throw new Error(
      mode === 'AES-GCM'
        ? 'decryption failed: wrong key, or the file was truncated or tampered with (authentication tag mismatch)'
        : 'decryption failed: wrong key, or the file was truncated or tampered with (bad padding)',
    );
  }
}
