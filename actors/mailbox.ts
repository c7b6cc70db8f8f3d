/**
 * A mailbox: a one-way ring of byte frames in a SharedArrayBuffer, written by one thread and
 * read by another, with no message port in between. A device has two: requests (main thread →
 * device actor) and replies (device actor → main thread).
 *
 * - `post(length, write)` puts one frame of `length` bytes in the ring (written in place by
 *   `write`), or returns false when the ring is full: the producer keeps it and retries once
 *   `whenRoom()` (or `sleepForRoom()`) says a frame was taken.
 * - `take(read)` hands the oldest frame to `read` (a view valid only during the call) and frees
 *   its bytes; undefined when the ring is empty.
 * - Waking the consumer: every post rings a doorbell word (`Atomics.notify`). A consumer on a
 *   thread that may block (the device actor) spins for a bounded time, then sleeps in
 *   `Atomics.wait` (`sleep`); one that must not block (the main thread) awaits
 *   `Atomics.waitAsync` (`whenPosted`). `wake()` rings the doorbell without a frame, so a
 *   blocked consumer returns to its event loop (a control message is waiting, or it must stop).
 *
 * One producer and one consumer per mailbox (each side's JS is single-threaded, so any number
 * of async producers within one thread is fine). Frames and positions are 8-byte aligned; a
 * frame that does not fit before the ring's end leaves a wrap marker and starts at offset 0.
 * The layout is bytes only, with no pointers, so the same frames can later travel over a socket.
 */

/** Header words (Int32) before the frame area. */
const WRITE = 0; // bytes written, modulo 2^32 (the producer's position)
const READ = 1; // bytes taken, modulo 2^32 (the consumer's position)
const DOORBELL = 2; // rung on each post and by wake()
const POSTED = 3; // frames posted, modulo 2^32
const TAKEN = 4; // frames taken, modulo 2^32
const HEADER_BYTES = 64;
/** A frame's own header: its payload length (or WRAP), then padding to 8 bytes. */
const FRAME_HEADER = 8;
const WRAP_MARKER = -1;

type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
/** Atomics.waitAsync (V8, Node ≥ 16); the project's TypeScript lib (ES2022) does not declare it yet. */
const atomics = Atomics as unknown as { waitAsync(this: void, a: Int32Array, index: number, value: number): WaitAsyncResult };
const waitAsync = atomics.waitAsync;

const align8 = (n: number): number => (n + 7) & ~7;
const resolved: Promise<void> = Promise.resolve();

/** How a `sleep` ended. */
export type WakeReason = 'frame' | 'woken' | 'timeout';

export class Mailbox {
  /** The shared memory: hand it to the other thread, which attaches with `new Mailbox(buffer)`. */
  readonly buffer: SharedArrayBuffer;
  /** Bytes of the frame area (a power of two). */
  readonly capacity: number;
  /** The largest payload one frame may carry (half the ring, so a wrap always leaves room). */
  readonly maxFrameBytes: number;
  private readonly words: Int32Array;
  private readonly view: DataView;
  private readonly mask: number;

  /** A new, empty mailbox whose frame area holds `capacityBytes` (rounded up to a power of two, ≥ 64). */
  static create(capacityBytes: number): Mailbox {
    let capacity = 64;
    while (capacity < capacityBytes) capacity *= 2;
    return new Mailbox(new SharedArrayBuffer(HEADER_BYTES + capacity));
  }

  /** Attaches to a mailbox created by `Mailbox.create` (on this thread or another). */
  constructor(buffer: SharedArrayBuffer) {
    const capacity = buffer.byteLength - HEADER_BYTES;
    if (capacity < 64 || (capacity & (capacity - 1)) !== 0) throw new RangeError(`not a mailbox buffer (${buffer.byteLength} bytes)`);
    this.buffer = buffer;
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.maxFrameBytes = capacity / 2 - FRAME_HEADER;
    this.words = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.view = new DataView(buffer, HEADER_BYTES, capacity);
  }

  /** Frames posted and not yet taken. */
  get size(): number {
    return (Atomics.load(this.words, POSTED) - Atomics.load(this.words, TAKEN)) >>> 0;
  }

  /**
   * Puts one frame in the ring: `write` fills `length` bytes of `view` from `offset`. Returns
   * false (writing nothing) when the ring has no room for it now. Throws a RangeError for a
   * frame longer than `maxFrameBytes`. Producer side only.
   */
  post(length: number, write: (view: DataView, offset: number) => void): boolean {
    if (length > this.maxFrameBytes) throw new RangeError(`a mailbox frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`);
    const frame = FRAME_HEADER + align8(length);
    let w = Atomics.load(this.words, WRITE);
    if (!this.fits(frame, w, Atomics.load(this.words, READ))) return false;
    let at = w & this.mask;
    const skip = this.capacity - at < frame ? this.capacity - at : 0;
    if (skip > 0) {
      this.view.setInt32(at, WRAP_MARKER, true);
      w = (w + skip) | 0;
      at = 0;
    }
    this.view.setInt32(at, length, true);
    write(this.view, at + FRAME_HEADER);
    Atomics.store(this.words, WRITE, (w + frame) | 0); // publishes the frame's bytes
    Atomics.add(this.words, POSTED, 1);
    Atomics.add(this.words, DOORBELL, 1);
    Atomics.notify(this.words, DOORBELL);
    return true;
  }

  /**
   * Takes the oldest frame: `read` gets a view and the frame's offset and length in it (valid
   * only during the call) and returns what it decoded. Undefined when the ring is empty.
   * Consumer side only.
   */
  take<T>(read: (view: DataView, offset: number, length: number) => T): T | undefined {
    let r = Atomics.load(this.words, READ);
    if (r === Atomics.load(this.words, WRITE)) return undefined;
    let at = r & this.mask;
    let length = this.view.getInt32(at, true);
    if (length === WRAP_MARKER) {
      r = (r + this.capacity - at) | 0;
      at = 0;
      length = this.view.getInt32(0, true);
    }
    let value: T;
    try {
      value = read(this.view, at + FRAME_HEADER, length);
    } finally {
      // A frame that cannot be decoded is dropped all the same: the ring never sticks on it.
      Atomics.store(this.words, READ, (r + FRAME_HEADER + align8(length)) | 0);
      Atomics.add(this.words, TAKEN, 1);
      Atomics.notify(this.words, READ);
    }
    return value;
  }

  /** True when a frame is waiting. */
  hasFrame(): boolean {
    return Atomics.load(this.words, READ) !== Atomics.load(this.words, WRITE);
  }

  /** Rings the doorbell without a frame: a consumer in `sleep` or `whenPosted` returns. */
  wake(): void {
    Atomics.add(this.words, DOORBELL, 1);
    Atomics.notify(this.words, DOORBELL);
  }

  /**
   * Blocks the calling thread until a frame is waiting, `wake()` is called, or `timeoutMs`
   * passes: first spinning for up to `spinMicros` (a frame that follows soon is taken without
   * a sleep and a wake-up), then in `Atomics.wait`. Consumer side, on a thread that may block
   * (not the main thread).
   */
  sleep(spinMicros: number, timeoutMs: number): WakeReason {
    if (this.hasFrame()) return 'frame';
    if (spinMicros > 0) {
      const until = performance.now() + spinMicros / 1000;
      do {
        for (let i = 0; i < 64; i++) if (this.hasFrame()) return 'frame';
      } while (performance.now() < until);
    }
    const bell = Atomics.load(this.words, DOORBELL);
    if (this.hasFrame()) return 'frame';
    const outcome = Atomics.wait(this.words, DOORBELL, bell, timeoutMs);
    if (this.hasFrame()) return 'frame';
    return outcome === 'timed-out' ? 'timeout' : 'woken';
  }

  /**
   * Resolves once a frame is waiting or `wake()` was called, without blocking the thread
   * (`Atomics.waitAsync`). Consumer side. A pending wait does not keep the process alive.
   */
  whenPosted(): Promise<void> {
    const bell = Atomics.load(this.words, DOORBELL);
    if (this.hasFrame()) return resolved;
    const waiting = waitAsync(this.words, DOORBELL, bell);
    return waiting.async ? waiting.value.then(() => undefined) : resolved;
  }

  /**
   * Resolves once a frame of `length` bytes fits, or the consumer took a frame (retry `post`;
   * it may still be full). Producer side, without blocking the thread.
   */
  whenRoom(length: number): Promise<void> {
    const read = Atomics.load(this.words, READ);
    if (this.fits(FRAME_HEADER + align8(length), Atomics.load(this.words, WRITE), read)) return resolved;
    const waiting = waitAsync(this.words, READ, read);
    return waiting.async ? waiting.value.then(() => undefined) : resolved;
  }

  /** `whenRoom` for a thread that may block: returns when a frame fits, one was taken, or `timeoutMs` passed. */
  sleepForRoom(length: number, timeoutMs: number): void {
    const read = Atomics.load(this.words, READ);
    if (this.fits(FRAME_HEADER + align8(length), Atomics.load(this.words, WRITE), read)) return;
    Atomics.wait(this.words, READ, read, timeoutMs);
  }

  /** Whether a frame of `frame` bytes (header included) fits between positions `write` and `read`. */
  private fits(frame: number, write: number, read: number): boolean {
    const at = write & this.mask;
    const skip = this.capacity - at < frame ? this.capacity - at : 0;
    return ((write - read) >>> 0) + skip + frame <= this.capacity;
  }
}
