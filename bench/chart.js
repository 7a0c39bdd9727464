// A picture of a deploy: requests/s, p99 latency and failed requests over
// time, with each reload's window shaded. Hand-written SVG, no dependencies.
//
// renderChart({
//   title, subtitle,
//   bucketMs,
//   runs: [{ label, buckets: [{t, rps, p99, failed}],   // t: ms from the run's start
//            windows: [{from, to}],                      // reloads, ms from the same start
//            phases: [{from, to, label}] }],             // e.g. steady / reloading
// }) -> string (an SVG document)

const W = 960;
const LEFT = 64;
const RIGHT = 16;
const PLOT_W = W - LEFT - RIGHT;
const PANEL_H = 96;
const PANEL_GAP = 14;
const RUN_HEAD = 34;
const RUN_GAP = 30;
const TOP = 58;
const AXIS_H = 26;

const COLORS = { rps: '#1f6fb2', p99: '#b25d1f', failed: '#c0392b', shade: '#f2c14e', grid: '#e3e3e3', text: '#222', muted: '#666' };

export function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The smallest 1/2/5 x 10^k at or above v (v > 0), for axis maxima. */
export function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const r1 = (x) => Math.round(x * 10) / 10;

function fmt(v) {
  if (v >= 10_000) return `${r1(v / 1000)}k`;
  if (v >= 100) return String(Math.round(v));
  return String(r1(v));
}

function panel({ y, xOf, spanMs, windows, title, unit, values, kind, color }) {
  const out = [];
  const finite = values.filter((v) => Number.isFinite(v.v));
  const max = niceCeil(Math.max(kind === 'bars' ? 1 : 0, ...finite.map((v) => v.v)));
  const yOf = (v) => y + PANEL_H - (Math.min(v, max) / max) * PANEL_H;
  out.push(`<g class="panel" data-panel="${esc(title)}">`);
  // reload windows
  for (const w of windows) {
    const x0 = xOf(Math.max(0, w.from));
    const x1 = xOf(Math.min(spanMs, w.to));
    if (x1 > x0) out.push(`<rect class="reload" x="${r1(x0)}" y="${y}" width="${r1(Math.max(1, x1 - x0))}" height="${PANEL_H}" fill="${COLORS.shade}" fill-opacity="0.35"/>`);
  }
  // grid and y labels
  for (const f of [0, 0.5, 1]) {
    const gy = r1(yOf(max * f));
    out.push(`<line x1="${LEFT}" x2="${LEFT + PLOT_W}" y1="${gy}" y2="${gy}" stroke="${COLORS.grid}"/>`);
    out.push(`<text x="${LEFT - 6}" y="${gy + 4}" text-anchor="end" font-size="11" fill="${COLORS.muted}">${fmt(max * f)}</text>`);
  }
  out.push(`<text x="${LEFT + 6}" y="${y + 13}" font-size="12" font-weight="bold" fill="${color}">${esc(title)}${unit ? ` (${esc(unit)})` : ''}</text>`);
  if (kind === 'line') {
    let d = '';
    let pen = false;
    for (const p of values) {
      if (!Number.isFinite(p.v)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${r1(xOf(p.t))} ${r1(yOf(p.v))}`;
      pen = true;
    }
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5" stroke-linejoin="round"/>`);
  } else {
    const total = values.reduce((s, p) => s + (p.v || 0), 0);
    for (const p of values) {
      if (!(p.v > 0)) continue;
      const x0 = xOf(p.t);
      const x1 = xOf(p.t + p.w);
      out.push(`<rect class="failed" x="${r1(x0)}" y="${r1(yOf(p.v))}" width="${r1(Math.max(1.5, x1 - x0))}" height="${r1(y + PANEL_H - yOf(p.v))}" fill="${color}"/>`);
    }
    if (total === 0) {
      out.push(`<text x="${LEFT + PLOT_W / 2}" y="${y + PANEL_H / 2 + 5}" text-anchor="middle" font-size="13" fill="${COLORS.muted}">0 failed requests</text>`);
    }
  }
  out.push(`<rect x="${LEFT}" y="${y}" width="${PLOT_W}" height="${PANEL_H}" fill="none" stroke="#bbb"/>`);
  out.push('</g>');
  return out.join('\n');
}

export function renderChart({ title, subtitle = '', bucketMs, runs }) {
  const runH = RUN_HEAD + 3 * PANEL_H + 2 * PANEL_GAP + AXIS_H;
  const H = TOP + runs.length * runH + (runs.length - 1) * RUN_GAP + 26;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${LEFT}" y="24" font-size="17" font-weight="bold" fill="${COLORS.text}">${esc(title)}</text>`);
  if (subtitle) out.push(`<text x="${LEFT}" y="44" font-size="12" fill="${COLORS.muted}">${esc(subtitle)}</text>`);
  runs.forEach((run, i) => {
    const y0 = TOP + i * (runH + RUN_GAP);
    const spanMs = Math.max(bucketMs, ...run.buckets.map((b) => b.t + bucketMs));
    const xOf = (t) => LEFT + (Math.max(0, Math.min(spanMs, t)) / spanMs) * PLOT_W;
    out.push(`<g class="run" data-run="${esc(run.label)}">`);
    out.push(`<text x="${LEFT}" y="${y0 + 16}" font-size="14" font-weight="bold" fill="${COLORS.text}">${esc(run.label)}</text>`);
    // phase labels above the first panel, with a tick where each begins
    for (const p of run.phases ?? []) {
      const x0 = xOf(p.from);
      const x1 = xOf(p.to);
      out.push(`<line x1="${r1(x0)}" x2="${r1(x0)}" y1="${y0 + 20}" y2="${y0 + RUN_HEAD}" stroke="${COLORS.muted}"/>`);
      out.push(`<text x="${r1((x0 + x1) / 2)}" y="${y0 + 30}" text-anchor="middle" font-size="11" fill="${COLORS.muted}">${esc(p.label)}</text>`);
    }
    const py = (k) => y0 + RUN_HEAD + k * (PANEL_H + PANEL_GAP);
    const w = run.windows ?? [];
    const pts = (key) => run.buckets.map((b) => ({ t: b.t + bucketMs / 2, v: b[key], w: bucketMs }));
    out.push(panel({ y: py(0), xOf, spanMs, windows: w, title: 'requests/s', unit: '', values: pts('rps'), kind: 'line', color: COLORS.rps }));
    out.push(panel({ y: py(1), xOf, spanMs, windows: w, title: 'p99 latency', unit: 'ms', values: pts('p99'), kind: 'line', color: COLORS.p99 }));
    out.push(
      panel({ y: py(2), xOf, spanMs, windows: w, title: 'failed requests', unit: `per ${bucketMs} ms`, values: run.buckets.map((b) => ({ t: b.t, v: b.failed, w: bucketMs })), kind: 'bars', color: COLORS.failed }),
    );
    // time axis
    const ay = py(2) + PANEL_H;
    const stepS = niceCeil(spanMs / 1000 / 12);
    for (let s = 0; s * 1000 <= spanMs; s += stepS) {
      const x = r1(xOf(s * 1000));
      out.push(`<line x1="${x}" x2="${x}" y1="${ay}" y2="${ay + 4}" stroke="${COLORS.muted}"/>`);
      out.push(`<text x="${x}" y="${ay + 16}" text-anchor="middle" font-size="11" fill="${COLORS.muted}">${s}s</text>`);
    }
    out.push('</g>');
  });
  const ly = H - 10;
  out.push(`<rect x="${LEFT}" y="${ly - 10}" width="14" height="10" fill="${COLORS.shade}" fill-opacity="0.35"/>`);
  out.push(`<text x="${LEFT + 20}" y="${ly}" font-size="11" fill="${COLORS.muted}">shaded: a reload (smoothctl reload, from the request to the last old worker's exit)</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
