// The security report's chart, drawn as inline SVG (no library): failures
// over time, stacked by offender (site, client pseudonym, user agent).

import { val, first } from './api.js';

const NS = 'http://www.w3.org/2000/svg';
const COLORS = 8; // .s0 … .s7 in console.css; the rest are "others"

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The offender's label: site · client · user agent. */
export function offenderLabel(o) {
  return [first(o, 'site', 'site_id') || 'no site', first(o, 'client') || 'unknown client', first(o, 'user_agent', 'ua') || 'unknown agent'].join(' · ');
}

function ts(v) {
  const t = typeof v === 'number' ? v * (v < 1e12 ? 1000 : 1) : Date.parse(v);
  return Number.isFinite(t) ? t : NaN;
}

/**
 * Time points per offender, from whichever the report has: flat rows
 * (report.series / report.buckets / report.timeline: {minute|time|start, site,
 * client, user_agent, count|failures}), or per-offender series
 * (offender.series / buckets / points: {minute|time|start, count|failures}).
 * Returns {series: [{label, points: [[t, n]]}], exact}; exact is false when
 * only first and last sight are known (drawn as spans then).
 */
export function seriesOf(report) {
  const offenders = (report && val(report, 'offenders')) || [];
  const byLabel = new Map();
  const add = (label, t, n) => {
    if (!Number.isFinite(t)) return;
    if (!byLabel.has(label)) byLabel.set(label, new Map());
    const m = byLabel.get(label);
    m.set(t, (m.get(t) || 0) + n);
  };
  const flat = report && (val(report, 'series') || val(report, 'buckets') || val(report, 'timeline'));
  if (Array.isArray(flat) && flat.length && !Array.isArray(val(flat[0], 'points'))) {
    for (const r of flat) add(offenderLabel(r), ts(first(r, 'minute', 'time', 'start', 'bucket')), Number(first(r, 'count', 'failures') || 0));
  } else if (Array.isArray(flat) && flat.length) {
    for (const s of flat) for (const p of val(s, 'points')) add(first(s, 'label') || offenderLabel(s), ts(Array.isArray(p) ? p[0] : first(p, 'minute', 'time', 'start')), Number(Array.isArray(p) ? p[1] : first(p, 'count', 'failures') || 0));
  } else {
    for (const o of offenders) {
      const pts = val(o, 'series') || val(o, 'buckets') || val(o, 'points');
      if (!Array.isArray(pts)) continue;
      for (const p of pts) add(offenderLabel(o), ts(Array.isArray(p) ? p[0] : first(p, 'minute', 'time', 'start')), Number(Array.isArray(p) ? p[1] : first(p, 'count', 'failures') || 0));
    }
  }
  if (byLabel.size) {
    const series = [...byLabel].map(([label, m]) => ({ label, points: [...m].sort((a, b) => a[0] - b[0]) }));
    series.sort((a, b) => total(b) - total(a));
    return { series, exact: true };
  }
  const spans = offenders.map((o) => ({
    label: offenderLabel(o),
    from: ts(first(o, 'first_seen')),
    to: ts(first(o, 'last_seen')),
    failures: Number(first(o, 'failures') || 0),
  })).filter((s) => Number.isFinite(s.from));
  return { spans, exact: false };
}

function total(s) { return s.points.reduce((a, p) => a + p[1], 0); }

function fmtTime(t, span) {
  const d = new Date(t).toISOString();
  return span > 2 * 86400e3 ? d.slice(5, 10) + ' ' + d.slice(11, 16) : d.slice(11, 16);
}

/** Draws the chart into container (replacing its content). */
export function drawChart(container, report, { since, now } = {}) {
  container.replaceChildren();
  const W = 760, H = 300, L = 48, R = 12, T = 12, B = 36;
  const data = seriesOf(report);
  const t1 = now || ts(report && val(report, 'generated')) || Date.now();
  const t0 = since || ts(report && val(report, 'since')) || t1 - 86400e3;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', class: 'chart-svg' });
  const titleText = data.exact
    ? `Failures over time, stacked by offender: ${data.series.length} offenders`
    : `When each offender failed (first to last sight): ${data.spans.length} offenders`;
  svg.append(el('title', {}, titleText));
  svg.setAttribute('aria-label', titleText);
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  // Time axis.
  svg.append(el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }));
  for (let i = 0; i <= 6; i++) {
    const t = t0 + ((t1 - t0) * i) / 6;
    svg.append(el('line', { x1: x(t), y1: H - B, x2: x(t), y2: H - B + 4, class: 'axis' }));
    svg.append(el('text', { x: x(t), y: H - B + 18, 'text-anchor': i === 0 ? 'start' : i === 6 ? 'end' : 'middle', class: 'tick' }, fmtTime(t, t1 - t0)));
  }
  svg.append(el('text', { x: W - R, y: H - 4, 'text-anchor': 'end', class: 'tick' }, 'time (UTC)'));
  const legend = document.createElement('ul');
  legend.className = 'legend';
  const key = (i, label, n) => {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'swatch s' + Math.min(i, COLORS);
    sw.setAttribute('aria-hidden', 'true');
    li.append(sw, ` ${label}: ${n} failure${n === 1 ? '' : 's'}`);
    legend.append(li);
  };
  if (data.exact) {
    const shown = data.series.slice(0, COLORS);
    const others = data.series.slice(COLORS);
    if (others.length) {
      const m = new Map();
      for (const s of others) for (const [t, n] of s.points) m.set(t, (m.get(t) || 0) + n);
      shown.push({ label: `${others.length} others`, points: [...m].sort((a, b) => a[0] - b[0]) });
    }
    // Buckets: at most 60 bars over the period.
    const step = Math.max(60e3, Math.ceil((t1 - t0) / 60 / 60e3) * 60e3);
    const nb = Math.max(1, Math.ceil((t1 - t0) / step));
    const stacks = Array.from({ length: nb }, () => new Array(shown.length).fill(0));
    shown.forEach((s, i) => {
      for (const [t, n] of s.points) {
        const b = Math.min(nb - 1, Math.max(0, Math.floor((t - t0) / step)));
        stacks[b][i] += n;
      }
    });
    const max = Math.max(1, ...stacks.map((s) => s.reduce((a, n) => a + n, 0)));
    const y = (n) => H - B - (n / max) * (H - B - T);
    svg.append(el('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }));
    for (const n of [0, Math.round(max / 2), max]) {
      svg.append(el('text', { x: L - 6, y: y(n) + 4, 'text-anchor': 'end', class: 'tick' }, String(n)));
      svg.append(el('line', { x1: L, y1: y(n), x2: W - R, y2: y(n), class: 'grid' }));
    }
    const bw = Math.max(2, (W - L - R) / nb - 2);
    stacks.forEach((st, b) => {
      let acc = 0;
      st.forEach((n, i) => {
        if (!n) return;
        const r = el('rect', { x: x(t0 + b * step) + 1, y: y(acc + n), width: bw, height: Math.max(1, y(acc) - y(acc + n)), class: 's' + Math.min(i, COLORS) });
        r.append(el('title', {}, `${shown[i].label}: ${n} at ${new Date(t0 + b * step).toISOString().slice(0, 16)}Z`));
        svg.append(r);
        acc += n;
      });
    });
    shown.forEach((s, i) => key(i, s.label, total(s)));
  } else {
    const spans = data.spans.slice(0, 12);
    const rowH = Math.max(12, Math.min(28, (H - B - T) / Math.max(1, spans.length)));
    const maxF = Math.max(1, ...spans.map((s) => s.failures));
    spans.forEach((s, i) => {
      const yy = T + i * rowH;
      const x0 = x(Math.max(t0, s.from));
      const x1 = Math.max(x0 + 3, x(Math.min(t1, Number.isFinite(s.to) ? s.to : s.from)));
      const r = el('rect', { x: x0, y: yy + 2, width: x1 - x0, height: Math.max(4, (rowH - 4) * (0.35 + 0.65 * s.failures / maxF)), class: 's' + Math.min(i, COLORS) });
      r.append(el('title', {}, `${s.label}: ${s.failures} failures from ${new Date(s.from).toISOString().slice(0, 16)}Z to ${Number.isFinite(s.to) ? new Date(s.to).toISOString().slice(0, 16) + 'Z' : '?'}`));
      svg.append(r);
      key(i, s.label, s.failures);
    });
  }
  if ((data.exact && !data.series.length) || (!data.exact && !data.spans.length)) {
    svg.append(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, 'No authentication failures in this period'));
  }
  container.append(svg, legend);
}
