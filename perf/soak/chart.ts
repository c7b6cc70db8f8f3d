/**
 * The soak's plot: one hand-written SVG of stacked panels sharing a time axis (seconds since
 * the load started), one polyline per series, the warm-up shaded. No plotting dependency; the
 * tick and escaping helpers are the perf suite's (perf/suite/svg.ts).
 */
import { escapeXml, niceStep, tickLabel } from '../suite/svg.js';

export interface TimeSeries {
  readonly name: string;
  readonly color: string;
  readonly dashed?: boolean;
  readonly points: readonly { readonly t: number; readonly y: number }[];
}

export interface Panel {
  readonly title: string;
  readonly yLabel: string;
  /** Start the y axis near the lowest value instead of at 0 (to see a slope on a large base). */
  readonly fitY?: boolean;
  readonly series: readonly TimeSeries[];
}

export interface TimeChartSpec {
  readonly title: string;
  readonly subtitle: string;
  readonly durationS: number;
  readonly warmupS: number;
  readonly panels: readonly Panel[];
}

const W = 820;
const PANEL_H = 190;
const M = { left: 70, right: 200, top: 62, gap: 46, bottom: 52 };
const f1 = (v: number): string => v.toFixed(1);

function ticksUpTo(hi: number): { max: number; ticks: number[] } {
  const step = niceStep(hi > 0 ? hi : 1, 4);
  const max = Math.ceil((hi > 0 ? hi * 1.05 : 1) / step) * step;
  const ticks: number[] = [];
  for (let t = 0; t <= max + step / 2; t += step) ticks.push(t);
  return { max, ticks };
}

/** Ticks over [lo, hi] with a margin, starting at a round value below lo. */
function ticksAround(lo: number, hi: number): { min: number; max: number; ticks: number[] } {
  const span = Math.max(hi - lo, Math.abs(hi) * 0.02, 1);
  const step = niceStep(span * 1.2, 4);
  const min = Math.max(0, Math.floor((lo - span * 0.1) / step) * step);
  const max = Math.ceil((hi + span * 0.1) / step) * step;
  const ticks: number[] = [];
  for (let t = min; t <= max + step / 2; t += step) ticks.push(t);
  return { min, max, ticks };
}

function panelSvg(p: Panel, top: number, spec: TimeChartSpec): string[] {
  const plotW = W - M.left - M.right;
  const x = (t: number): number => M.left + (plotW * t) / spec.durationS;
  const values = p.series.flatMap((s) => s.points.map((q) => q.y)).filter((v) => Number.isFinite(v));
  const hi = values.length ? Math.max(...values) : 1;
  const { min, max, ticks } = p.fitY && values.length ? ticksAround(Math.min(...values), hi) : { min: 0, ...ticksUpTo(hi) };
  const y = (v: number): number => top + PANEL_H * (1 - (v - min) / (max - min));
  const out: string[] = [];
  out.push(`<text x="${M.left}" y="${top - 10}" font-weight="bold">${escapeXml(p.title)}</text>`);
  out.push(`<rect x="${M.left}" y="${top}" width="${f1(x(spec.warmupS) - M.left)}" height="${PANEL_H}" fill="#f2f2f2"/>`);
  for (const t of ticks) {
    out.push(`<line x1="${M.left}" y1="${f1(y(t))}" x2="${M.left + plotW}" y2="${f1(y(t))}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${M.left - 6}" y="${f1(y(t))}" text-anchor="end" dominant-baseline="middle" fill="#333">${escapeXml(tickLabel(t))}</text>`);
  }
  const xs = ticksUpTo(spec.durationS);
  for (const t of xs.ticks.filter((v) => v <= spec.durationS)) {
    out.push(`<line x1="${f1(x(t))}" y1="${top + PANEL_H}" x2="${f1(x(t))}" y2="${top + PANEL_H + 4}" stroke="#333"/>`);
    out.push(`<text x="${f1(x(t))}" y="${top + PANEL_H + 16}" text-anchor="middle" fill="#333">${escapeXml(tickLabel(t))}</text>`);
  }
  out.push(`<line x1="${M.left}" y1="${top}" x2="${M.left}" y2="${top + PANEL_H}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" y1="${top + PANEL_H}" x2="${M.left + plotW}" y2="${top + PANEL_H}" stroke="#333"/>`);
  out.push(`<text x="16" y="${top + PANEL_H / 2}" text-anchor="middle" fill="#333" transform="rotate(-90 16 ${top + PANEL_H / 2})">${escapeXml(p.yLabel)}</text>`);
  p.series.forEach((s, si) => {
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    let path = '';
    let pen = false;
    for (const q of s.points) {
      if (!Number.isFinite(q.y)) {
        pen = false;
        continue;
      }
      path += `${pen ? 'L' : 'M'}${f1(x(q.t))} ${f1(y(q.y))} `;
      pen = true;
    }
    if (path) out.push(`<path d="${path.trim()}" fill="none" stroke="${s.color}" stroke-width="1.8"${dash}/>`);
    const ly = top + 8 + si * 18;
    const lx = M.left + plotW + 14;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 28}" y="${ly}" dominant-baseline="middle" fill="#222">${escapeXml(s.name)}</text>`);
  });
  return out;
}

export function timeChart(spec: TimeChartSpec): string {
  const H = M.top + spec.panels.length * (PANEL_H + M.gap) + M.bottom - M.gap;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${M.left}" y="22" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`);
  out.push(`<text x="${M.left}" y="40" fill="#555">${escapeXml(spec.subtitle)}</text>`);
  spec.panels.forEach((p, i) => out.push(...panelSvg(p, M.top + 14 + i * (PANEL_H + M.gap), spec)));
  out.push(`<text x="${M.left + (W - M.left - M.right) / 2}" y="${H - 8}" text-anchor="middle" fill="#333">seconds since the load started (grey: warm-up, not judged)</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
