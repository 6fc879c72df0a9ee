/* Small SVG line charts for the dashboard (no library): lines with optional 95% bands, labelled axes, and a
   legend below the plot so it never hides a line. */
"use strict";
const Charts = (() => {
  const PALETTE = ["#2f5bd3", "#d9480f", "#2b8a3e", "#9c36b5", "#c2255c", "#0b7285", "#e67700", "#495057"];
  const NS = 'xmlns="http://www.w3.org/2000/svg"';
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

  function ticks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; }
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) { out.push(k === 0 ? 0 : Number((k * step).toPrecision(10))); }
    return out;
  }
  const clock = (t) => new Date(t * 1000).toTimeString().slice(0, 8);
  const label = (v) => Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(3)));

  /* spec: {title, xLabel, yLabel, t: [epoch s], series: [{name, values, lo?, hi?}], yMin?, yMax?, zero?} */
  function line(spec) {
    const W = 560, H = 260, L = 64, R = 32, T = 10, B = 44;
    const t = spec.t || [];
    const vals = [];
    spec.series.forEach((s) => s.values.forEach((v, i) => {
      if (v !== null && v !== undefined) { vals.push(v); }
      if (s.lo && s.lo[i] !== null && s.lo[i] !== undefined) { vals.push(s.lo[i], s.hi[i]); }
    }));
    let y0 = spec.yMin !== undefined ? spec.yMin : Math.min(...vals, spec.zero ? 0 : Infinity);
    let y1 = spec.yMax !== undefined ? spec.yMax : Math.max(...vals, spec.zero ? 0 : -Infinity);
    if (!isFinite(y0) || !isFinite(y1)) { y0 = 0; y1 = 1; }
    if (y1 - y0 < 1e-12) { y0 -= 0.5 * (Math.abs(y0) || 1); y1 += 0.5 * (Math.abs(y1) || 1); }
    const x0 = t.length ? t[0] : 0, x1 = t.length > 1 ? t[t.length - 1] : x0 + 1;
    const X = (v) => L + (v - x0) / (x1 - x0 || 1) * (W - L - R);
    const Y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
    let g = "";
    const yt = ticks(y0, y1, 5), xt = ticks(x0, x1, 5);
    g += '<g class="grid">' + yt.map((v) => `<line x1="${L}" x2="${W - R}" y1="${Y(v)}" y2="${Y(v)}"/>`).join("") + "</g>";
    g += '<g class="axis">';
    g += `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>`;
    g += yt.map((v) => `<text x="${L - 6}" y="${Y(v) + 4}" text-anchor="end">${esc(label(v))}</text>`).join("");
    g += xt.map((v) => `<text x="${X(v)}" y="${H - B + 16}" text-anchor="middle">${clock(v)}</text>`).join("");
    g += `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">${esc(spec.xLabel || "time (local clock)")}</text>`;
    g += `<text transform="translate(14 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel || "")}</text>`;
    g += "</g>";
    if (spec.zero && y0 < 0 && y1 > 0) { g += `<line x1="${L}" x2="${W - R}" y1="${Y(0)}" y2="${Y(0)}" stroke="#667085" stroke-dasharray="4 3"/>`; }
    spec.series.forEach((s, k) => {
      const color = s.color || PALETTE[k % PALETTE.length];
      if (s.lo) {
        const up = [], down = [];
        s.lo.forEach((lo, i) => { if (lo !== null && lo !== undefined && t[i] !== undefined) { up.push(`${X(t[i])},${Y(s.hi[i])}`); down.unshift(`${X(t[i])},${Y(lo)}`); } });
        if (up.length) { g += `<polygon points="${up.concat(down).join(" ")}" fill="${color}" fill-opacity="0.15" stroke="none"/>`; }
      }
      let d = "", pen = false;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        d += `${pen ? "L" : "M"}${X(t[i]).toFixed(1)},${Y(v).toFixed(1)}`; pen = true;
      });
      g += `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`;
      s.values.forEach((v, i) => { if (v !== null && v !== undefined) { g += `<circle cx="${X(t[i])}" cy="${Y(v)}" r="2.5" fill="${color}"/>`; } });
    });
    const legend = spec.series.map((s, k) => `<span><svg ${NS} width="18" height="10"><rect width="18" height="10" rx="2" fill="${s.color || PALETTE[k % PALETTE.length]}"/></svg>${esc(s.name)}</span>`).join("");
    const note = spec.series.some((s) => s.lo) ? '<span class="muted">shaded: 95% interval</span>' : "";
    return `<div class="chart"><div class="title">${esc(spec.title)}</div>` +
      `<svg ${NS} viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(spec.title)}">${g}</svg>` +
      `<div class="legend">${legend}${note}</div></div>`;
  }
  return { line, PALETTE };
})();
