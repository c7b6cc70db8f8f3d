/**
 * A bounded latency histogram for `actorserve bench`: microsecond values in log-linear
 * buckets (exact below 1024 µs, then 512 buckets per power of two: at most 0.2 % error),
 * 11 776 counters whatever the request count, mergeable across worker threads.
 */

const SUB_BITS = 9;
const SUB = 1 << SUB_BITS; // 512
const LINEAR = 2 * SUB; // values below this are exact
const MAX_US = 0x7fffffff; // ~35 minutes
/** Number of buckets (index of MAX_US + 1). */
export const BUCKETS = bucketOf(MAX_US) + 1;

function bucketOf(us: number): number {
  if (us < LINEAR) return us;
  const e = 31 - Math.clz32(us) - SUB_BITS;
  return SUB * e + (us >>> e);
}

/** The middle of bucket `i`, in microseconds. */
function valueOf(i: number): number {
  if (i < LINEAR) return i;
  const e = Math.floor(i / SUB) - 1;
  const m = i - SUB * e;
  return m * 2 ** e + (2 ** e - 1) / 2;
}

/** What a worker sends back: plain data that structured clone copies cheaply. */
export interface HistogramData {
  readonly counts: Uint32Array;
  readonly count: number;
  readonly sumUs: number;
  readonly minUs: number;
  readonly maxUs: number;
}

export class Histogram {
  counts = new Uint32Array(BUCKETS);
  count = 0;
  sumUs = 0;
  minUs = Infinity;
  maxUs = 0;

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    const us = Math.min(MAX_US, Math.max(0, Math.round(ms * 1000)));
    this.counts[bucketOf(us)]!++;
    this.count++;
    this.sumUs += us;
    if (us < this.minUs) this.minUs = us;
    if (us > this.maxUs) this.maxUs = us;
  }

  data(): HistogramData {
    return { counts: this.counts, count: this.count, sumUs: this.sumUs, minUs: this.minUs, maxUs: this.maxUs };
  }

  merge(d: HistogramData): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += d.counts[i]!;
    this.count += d.count;
    this.sumUs += d.sumUs;
    this.minUs = Math.min(this.minUs, d.minUs);
    this.maxUs = Math.max(this.maxUs, d.maxUs);
  }

  /** The latency at quantile q (0..1) in milliseconds; NaN when empty. Exact for max/min. */
  quantileMs(q: number): number {
    if (this.count === 0) return NaN;
    if (q >= 1) return this.maxUs / 1000;
    if (q <= 0) return this.minUs / 1000;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.maxUs, Math.max(this.minUs, valueOf(i))) / 1000;
    }
    return this.maxUs / 1000;
  }

  meanMs(): number {
    return this.count === 0 ? NaN : this.sumUs / this.count / 1000;
  }
}
