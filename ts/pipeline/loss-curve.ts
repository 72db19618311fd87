// Loss curves: a standalone SVG for the run folder (train loss per step, eval loss as points)
// and a one-line Unicode sparkline for the terminal. Pure functions of the metrics history.

export interface LossPoint {
  step: number;
  loss: number;
  evalLoss?: number | null | undefined;
}

const BARS = '▁▂▃▄▅▆▇█';

/** `values` resampled to at most `width` columns (mean per column), drawn with block characters. */
export function sparkline(values: number[], width = 60): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return '';
  const cols = Math.min(width, finite.length);
  const buckets: number[] = [];
  for (let c = 0; c < cols; c++) {
    const from = Math.floor((c * finite.length) / cols);
    const to = Math.max(from + 1, Math.floor(((c + 1) * finite.length) / cols));
    const slice = finite.slice(from, to);
    buckets.push(slice.reduce((a, b) => a + b, 0) / slice.length);
  }
  const lo = Math.min(...buckets);
  const hi = Math.max(...buckets);
  const span = hi - lo || 1;
  return buckets.map((v) => BARS[Math.min(BARS.length - 1, Math.round(((v - lo) / span) * (BARS.length - 1)))]).join('');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** An SVG line chart of train loss (and eval loss markers) against step. */
export function lossCurveSvg(points: LossPoint[], title = 'Training loss'): string {
  const W = 640;
  const H = 360;
  const pad = { left: 56, right: 16, top: 36, bottom: 40 };
  const pw = W - pad.left - pad.right;
  const ph = H - pad.top - pad.bottom;
  const losses = points.flatMap((p) => [p.loss, p.evalLoss ?? Number.NaN]).filter(Number.isFinite);
  const maxStep = Math.max(1, ...points.map((p) => p.step));
  const lo = losses.length ? Math.min(0, ...losses) : 0;
  const hi = losses.length ? Math.max(...losses) * 1.05 || 1 : 1;
  const x = (step: number): number => pad.left + (step / maxStep) * pw;
  const y = (loss: number): number => pad.top + ph - ((loss - lo) / (hi - lo)) * ph;
  const path = points
    .filter((p) => Number.isFinite(p.loss))
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`)
    .join(' ');
  const evals = points
    .filter((p) => p.evalLoss != null && Number.isFinite(p.evalLoss))
    .map((p) => `<circle cx="${x(p.step).toFixed(1)}" cy="${y(p.evalLoss as number).toFixed(1)}" r="3.5" fill="#d9480f"/>`)
    .join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const v = lo + f * (hi - lo);
      return (
        `<line x1="${pad.left}" x2="${W - pad.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e9ecef"/>` +
        `<text x="${pad.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(2)}</text>`
      );
    })
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    ticks,
    `<line x1="${pad.left}" y1="${pad.top + ph}" x2="${W - pad.right}" y2="${pad.top + ph}" stroke="#495057"/>`,
    `<text x="${pad.left}" y="${H - 12}">step 0</text>`,
    `<text x="${W - pad.right}" y="${H - 12}" text-anchor="end">step ${maxStep}</text>`,
    `<path d="${path}" fill="none" stroke="#1c7ed6" stroke-width="1.8"/>`,
    evals,
    `<text x="${W - pad.right}" y="${pad.top - 6}" text-anchor="end"><tspan fill="#1c7ed6">— train</tspan>  <tspan fill="#d9480f">● eval</tspan></text>`,
    '</svg>',
    '',
  ].join('\n');
}
