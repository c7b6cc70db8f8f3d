/**
 * A small Prometheus metrics registry (text exposition format 0.0.4): counters, histograms and
 * gauges whose values are read at scrape time. Labels are positional for speed: a metric
 * declares its label names once and every observation passes the values in that order.
 */

type LabelValues = readonly (string | number)[];

function escapeLabel(v: string | number): string {
  return String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: LabelValues, extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export interface Metric {
  readonly name: string;
  render(out: string[]): void;
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: LabelValues; value: number }>();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  inc(labels: LabelValues, by = 1): void {
    const key = labels.join('\u0000');
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels: [...labels], value: by });
  }

  get(labels: LabelValues): number {
    return this.values.get(labels.join('\u0000'))?.value ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const { labels, value } of this.values.values()) out.push(`${this.name}${labelText(this.labelNames, labels)} ${formatValue(value)}`);
  }
}

export class Histogram implements Metric {
  private readonly values = new Map<string, { labels: LabelValues; counts: Float64Array; sum: number; count: number }>();

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {}

  observe(labels: LabelValues, value: number): void {
    const key = labels.join('\u0000');
    let entry = this.values.get(key);
    if (!entry) {
      entry = { labels: [...labels], counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
      this.values.set(key, entry);
    }
    // Buckets are few (≤ 20): a linear scan beats a binary search here.
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) {
        entry.counts[i]!++;
        break;
      }
    }
    entry.sum += value;
    entry.count++;
  }

  count(labels: LabelValues): number {
    return this.values.get(labels.join('\u0000'))?.count ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const { labels, counts, sum, count } of this.values.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += counts[i]!;
        out.push(`${this.name}_bucket${labelText(this.labelNames, labels, `le="${formatValue(le)}"`)} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labelText(this.labelNames, labels, 'le="+Inf"')} ${count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, labels)} ${formatValue(sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, labels)} ${count}`);
    }
  }
}

/**
 * A value read at scrape time from a callback returning [labels, value] pairs: a gauge, or a
 * counter that another component already counts (device actor restarts).
 */
export class Collected implements Metric {
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly type: 'gauge' | 'counter',
    private readonly labelNames: readonly string[],
    private readonly collect: () => Iterable<readonly [LabelValues, number]>,
  ) {}

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`);
    for (const [labels, value] of this.collect()) out.push(`${this.name}${labelText(this.labelNames, labels)} ${formatValue(value)}`);
  }
}

/** Latency buckets in seconds: 100 µs to 30 s. */
export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
export const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];

  counter(name: string, help: string, labelNames: readonly string[]): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  collected(
    name: string,
    help: string,
    type: 'gauge' | 'counter',
    labelNames: readonly string[],
    collect: () => Iterable<readonly [LabelValues, number]>,
  ): Collected {
    return this.add(new Collected(name, help, type, labelNames, collect));
  }

  /** Adds a metric made elsewhere (one shared by several registries, such as the process's GC histogram). */
  include<M extends Metric>(metric: M): M {
    return this.add(metric);
  }

  /** The Prometheus text exposition (Content-Type: text/plain; version=0.0.4). */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics) m.render(out);
    return out.join('\n') + '\n';
  }

  private add<M extends Metric>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.push(m);
    return m;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
