/** Aggregating repeated cells: median with min–max. */

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function spread(values: readonly number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN };
  const mid = v.length >> 1;
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]! };
}

/**
 * Paired ratios a[i] / b[i] (repeat i of two cells, which the suite runs back to back, so
 * they share the background load of that moment): their median and min–max.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): Spread {
  const n = Math.min(a.length, b.length);
  return spread(Array.from({ length: n }, (_, i) => a[i]! / b[i]!));
}

/** 1234.5 → "1235", 12.345 → "12.3", 1.2345 → "1.23". */
export function num(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 100) return Math.round(n).toString();
  if (a >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** "4123 (3990–4201)" */
export function withRange(s: Spread): string {
  if (!Number.isFinite(s.median)) return '–';
  if (s.min === s.max) return num(s.median);
  return `${num(s.median)} (${num(s.min)}–${num(s.max)})`;
}
