// The activity chart: runs, tool calls and refusals per bucket as stacked bars (left scale),
// spend per bucket as a line (right scale). Plain SVG built with DOM calls (no chart library, no
// markup strings); colours come from console.css classes, so the CSP needs no inline style.
import { el, money, svg } from './dom.js';

const W = 720;
const H = 150;
const M = { left: 44, right: 56, top: 12, bottom: 26 };

function label(x, y, text, anchor = 'middle', cls = 'axis-label') {
  return svg('text', { x, y, 'text-anchor': anchor, className: cls }, document.createTextNode(text));
}

function clock(iso, bucketS) {
  const d = new Date(iso);
  if (bucketS >= 3600 * 3) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric', hour: '2-digit' });
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/** A figure with the chart, its legend and its totals in words, from GET …/activity. */
export function activityChart(activity, testid = 'activity-chart') {
  const buckets = Array.isArray(activity?.buckets) ? activity.buckets : [];
  const n = Math.max(1, buckets.length);
  const calls = buckets.map((b) => (b.runs || 0) + (b.toolCalls || 0) + (b.refused || 0));
  const maxCalls = Math.max(1, ...calls);
  const maxSpend = Math.max(0, ...buckets.map((b) => b.spend || 0));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const slot = plotW / n;
  const barW = Math.max(1, slot * 0.8);
  const y = (v) => M.top + plotH - (v / maxCalls) * plotH;
  const ySpend = (v) => M.top + plotH - (maxSpend > 0 ? (v / maxSpend) * plotH : 0);
  const t = activity?.total ?? { runs: 0, toolCalls: 0, refused: 0, spend: 0 };
  const summary = `${t.runs} runs, ${t.toolCalls} tool calls, ${t.refused} refused, spend ${money(t.spend)}`;

  const chart = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    className: 'chart',
    role: 'img',
    'aria-label': `Activity: ${summary}`,
  });
  // Grid and axes.
  for (const f of [0, 0.5, 1]) {
    const gy = M.top + plotH - f * plotH;
    chart.append(svg('line', { x1: M.left, x2: W - M.right, y1: gy, y2: gy, className: f === 0 ? 'axis' : 'grid' }));
  }
  chart.append(label(M.left - 6, M.top + 4, String(maxCalls), 'end'), label(M.left - 6, M.top + plotH + 4, '0', 'end'));
  chart.append(
    label(W - M.right + 6, M.top + 4, money(maxSpend), 'start', 'axis-label spend-label'),
    label(W - M.right + 6, M.top + plotH + 4, '0', 'start', 'axis-label spend-label'),
  );
  if (buckets.length) {
    const bs = activity.bucketS;
    for (const i of [0, Math.floor((buckets.length - 1) / 2), buckets.length - 1]) {
      chart.append(label(M.left + slot * i + slot / 2, H - 8, clock(buckets[i].start, bs)));
    }
  }

  // Bars: runs at the bottom, tool calls on them, refusals on top.
  buckets.forEach((b, i) => {
    const x = M.left + slot * i + (slot - barW) / 2;
    let base = 0;
    const group = svg('g', { className: 'bucket', 'data-testid': 'chart-bucket' });
    for (const [value, cls] of [
      [b.runs, 'bar-runs'],
      [b.toolCalls, 'bar-tools'],
      [b.refused, 'bar-refused'],
    ]) {
      if (!value) continue;
      group.append(
        svg('rect', { x, y: y(base + value), width: barW, height: y(base) - y(base + value), className: cls }),
      );
      base += value;
    }
    // A hover target over the whole slot, titled with the bucket's figures.
    const title = svg('title');
    title.textContent = `${new Date(b.start).toLocaleString()}: ${b.runs} runs, ${b.toolCalls} tool calls, ${b.refused} refused, spend ${money(b.spend)}`;
    group.append(
      svg('rect', { x: M.left + slot * i, y: M.top, width: slot, height: plotH, className: 'hover' }, title),
    );
    chart.append(group);
  });

  // Spend: a line over the buckets that spent anything, dots where they did.
  if (maxSpend > 0) {
    const points = buckets.map((b, i) => `${M.left + slot * i + slot / 2},${ySpend(b.spend || 0)}`).join(' ');
    chart.append(svg('polyline', { points, className: 'line-spend' }));
    buckets.forEach((b, i) => {
      if (b.spend > 0)
        chart.append(
          svg('circle', { cx: M.left + slot * i + slot / 2, cy: ySpend(b.spend), r: 2.5, className: 'dot-spend' }),
        );
    });
  }
  if (calls.every((c) => c === 0) && maxSpend === 0)
    chart.append(label(W / 2, M.top + plotH / 2, 'No activity in this window', 'middle', 'axis-label empty-label'));

  const legend = el(
    'p',
    { className: 'legend' },
    el('span', { className: 'swatch swatch-runs' }),
    'runs ',
    el('span', { className: 'swatch swatch-tools' }),
    'tool calls ',
    el('span', { className: 'swatch swatch-refused' }),
    'refused ',
    el('span', { className: 'swatch swatch-spend' }),
    'spend (right scale)',
  );
  return el(
    'figure',
    { className: 'chart-figure', 'data-testid': testid },
    chart,
    legend,
    el('figcaption', { 'data-testid': `${testid}-total`, text: `In this window: ${summary}.` }),
  );
}
