/**
 * JSON reply bytes, written into one buffer that every reply of this thread reuses.
 *
 * Numbers go straight from their typed arrays into the buffer (native/index.ts
 * `writeJsonInto`): no JS string is made for them, and uWS sends bytes without the UTF-16 →
 * UTF-8 copy a string costs. Reusing the buffer matters for large replies: on a fresh
 * megabyte the page faults cost about as much as writing the text (measured: perf/codec-bench).
 *
 * The bytes are valid until the next reply is written. Replies are therefore written when they
 * are sent (exchange.ts `DeferredBody`), and uWS copies a body it cannot send at once into its
 * own buffer before `end` returns.
 */
import { Buffer } from 'node:buffer';
import { type JsonWritable, jsonTextBound, writeJsonInto } from '../../native/index.js';

const INITIAL_BYTES = 64 * 1024;
/** A buffer grown past this is dropped after its reply, so one huge reply doesn't pin memory. */
const KEEP_BYTES = 64 * 1024 * 1024;
/** Bytes per element to make room for first: a float32 with 9 digits, its sign and comma. */
const USUAL_CHARS = 12;
/** Typed arrays whose text could pass this go through a string (a rare, huge output). */
const MAX_DIRECT_BYTES = 256 * 1024 * 1024;

export class ReplyWriter {
  private buf: Buffer = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  private len = 0;

  /** Starts a new reply (the previous reply's bytes become invalid). */
  reset(): this {
    if (this.buf.length > KEEP_BYTES) this.buf = Buffer.allocUnsafeSlow(INITIAL_BYTES);
    this.len = 0;
    return this;
  }

  /** Bytes written so far; `truncate(mark)` drops what came after. */
  get length(): number {
    return this.len;
  }

  truncate(mark: number): void {
    this.len = Math.min(this.len, mark);
  }

  /** `s` must be ASCII (JSON punctuation, base64, text of numbers). */
  ascii(s: string): void {
    this.room(s.length);
    this.len += this.buf.write(s, this.len, 'latin1');
  }

  /** Any string, as UTF-8. */
  text(s: string): void {
    this.room(3 * s.length);
    this.len += this.buf.write(s, this.len, 'utf8');
  }

  /** Bytes as they are (KServe v2's binary tensor data). */
  raw(bytes: Uint8Array): void {
    this.room(bytes.byteLength);
    this.buf.set(bytes, this.len);
    this.len += bytes.byteLength;
  }

  /**
   * A typed array as nested JSON lists (the text of native/index.ts's write*Json). False, with
   * nothing written, for an output whose text could pass MAX_DIRECT_BYTES: write its string.
   */
  typed(data: JsonWritable, shape: readonly number[], asBool = false): boolean {
    const bound = jsonTextBound(data, shape, asBool);
    if (bound > MAX_DIRECT_BYTES) return false;
    // Room for the usual text first; the worst case (25 bytes a float) only when that fell short.
    this.room(Math.min(bound, jsonTextBound(data, shape, asBool, USUAL_CHARS)));
    let end = writeJsonInto(data, shape, this.buf, this.len, asBool);
    if (end < 0) {
      this.room(bound);
      end = writeJsonInto(data, shape, this.buf, this.len, asBool);
    }
    this.len = end;
    return true;
  }

  /** The reply so far: a view into the shared buffer, valid until the next `reset`. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  private room(bytes: number): void {
    if (this.len + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(2 * this.buf.length, this.len + bytes));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }
}
