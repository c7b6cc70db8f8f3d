/**
 * Hand-written SVG line charts for perf/report.md (no plotting dependency): categorical x
 * (the concurrency levels), linear or log y, one polyline per series with min–max bars.
 */

export interface Point {
  readonly y: number;
  readonly lo?: number;
  readonly hi?: number;
}

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly dashed?: boolean;
  /** One point per x tick; undefined leaves a gap. */
  readonly points: readonly (Point | undefined)[];
}

export interface ChartSpec {
  readonly title: string;
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly xTicks: readonly string[];
  readonly yLabel: string;
  readonly logY?: boolean;
  readonly series: readonly Series[];
}

const W = 720;
const H = 420;
const M = { left: 78, right: 190, top: 56, bottom: 56 };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export function niceStep(range: number, targetTicks: number): number {
  const raw = range / targetTicks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 1) return String(+v.toFixed(2));
  return String(+v.toPrecision(2));
}

export function lineChart(spec: ChartSpec): string {
  const values = spec.series.flatMap((s) => s.points.flatMap((p) => (p ? [p.y, p.lo ?? p.y, p.hi ?? p.y] : []))).filter((v) => Number.isFinite(v) && (!spec.logY || v > 0));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  let yMin: number;
  let yMax: number;
  let ticks: number[];
  if (spec.logY) {
    const lo = values.length ? Math.min(...values) : 1;
    const hi = values.length ? Math.max(...values) : 10;
    yMin = 10 ** Math.floor(Math.log10(lo));
    yMax = 10 ** Math.ceil(Math.log10(hi));
    if (yMax <= yMin) yMax = yMin * 10;
    ticks = [];
    for (let d = yMin; d <= yMax * 1.0001; d *= 10) {
      ticks.push(d);
      if (yMax / yMin <= 1000 && d * 2 < yMax) ticks.push(d * 2, d * 5);
    }
    ticks = ticks.filter((t) => t <= yMax * 1.0001).sort((a, b) => a - b);
  } else {
    yMin = 0;
    const hi = values.length ? Math.max(...values) : 1;
    const step = niceStep(hi > 0 ? hi : 1, 5);
    yMax = Math.ceil((hi > 0 ? hi * 1.05 : 1) / step) * step;
    ticks = [];
    for (let t = 0; t <= yMax + step / 2; t += step) ticks.push(t);
  }
  const y = (v: number): number => {
    const f = spec.logY ? (Math.log10(v) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)) : (v - yMin) / (yMax - yMin);
    return M.top + plotH * (1 - f);
  };
  const n = spec.xTicks.length;
  const x = (i: number): number => M.left + (n === 1 ? plotW / 2 : (plotW * (i + 0.5)) / n);
  const f1 = (v: number): string => v.toFixed(1);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${M.left}" y="22" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`);
  if (spec.subtitle) out.push(`<text x="${M.left}" y="40" fill="#555">${escapeXml(spec.subtitle)}</text>`);
  // grid and y ticks
  for (const t of ticks) {
    const yy = f1(y(t));
    out.push(`<line x1="${M.left}" y1="${yy}" x2="${M.left + plotW}" y2="${yy}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${M.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#333">${escapeXml(tickLabel(t))}</text>`);
  }
  // axes
  out.push(`<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + plotH}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" y1="${M.top + plotH}" x2="${M.left + plotW}" y2="${M.top + plotH}" stroke="#333"/>`);
  spec.xTicks.forEach((label, i) => {
    out.push(`<line x1="${f1(x(i))}" y1="${M.top + plotH}" x2="${f1(x(i))}" y2="${M.top + plotH + 5}" stroke="#333"/>`);
    out.push(`<text x="${f1(x(i))}" y="${M.top + plotH + 19}" text-anchor="middle" fill="#333">${escapeXml(label)}</text>`);
  });
  out.push(`<text x="${M.left + plotW / 2}" y="${H - 12}" text-anchor="middle" fill="#333">${escapeXml(spec.xLabel)}</text>`);
  out.push(
    `<text x="18" y="${M.top + plotH / 2}" text-anchor="middle" fill="#333" transform="rotate(-90 18 ${M.top + plotH / 2})">${escapeXml(spec.yLabel)}${spec.logY ? ' (log scale)' : ''}</text>`,
  );
  // series
  spec.series.forEach((s, si) => {
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    let path = '';
    let pen = false;
    s.points.forEach((p, i) => {
      if (!p || !Number.isFinite(p.y) || (spec.logY && p.y <= 0)) {
        pen = false;
        return;
      }
      path += `${pen ? 'L' : 'M'}${f1(x(i))} ${f1(y(p.y))} `;
      pen = true;
    });
    if (path) out.push(`<path d="${path.trim()}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    s.points.forEach((p, i) => {
      if (!p || !Number.isFinite(p.y) || (spec.logY && p.y <= 0)) return;
      const cx = f1(x(i));
      if (p.lo !== undefined && p.hi !== undefined && p.hi > p.lo && (!spec.logY || p.lo > 0)) {
        const [a, b] = [f1(y(p.lo)), f1(y(p.hi))];
        out.push(`<path d="M${cx} ${a} L${cx} ${b} M${f1(x(i) - 4)} ${a} L${f1(x(i) + 4)} ${a} M${f1(x(i) - 4)} ${b} L${f1(x(i) + 4)} ${b}" stroke="${s.color}" stroke-width="1.2"/>`);
      }
      out.push(`<circle cx="${cx}" cy="${f1(y(p.y))}" r="3.5" fill="${s.dashed ? '#ffffff' : s.color}" stroke="${s.color}" stroke-width="1.5"/>`);
    });
    // legend
    const ly = M.top + 8 + si * 20;
    const lx = M.left + plotW + 16;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 30}" y="${ly}" dominant-baseline="middle" fill="#222">${escapeXml(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
