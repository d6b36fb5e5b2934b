// DOM helpers of the console. Everything the API returns is untrusted (agents write reasoning,
// code, arguments and output): it only ever reaches the page as text (textContent, attribute
// values set by setAttribute), never as markup. There is no innerHTML anywhere in the console.

const SVG_NS = 'http://www.w3.org/2000/svg';

function put(node, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key === 'className') node.setAttribute('class', value);
    else if (key === 'onclick' || key === 'onchange' || key === 'onsubmit' || key === 'oninput')
      node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

/** An element with props (text, className, on*, attributes) and children (nodes or strings). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  put(node, props);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** The same for SVG (charts are drawn with DOM calls, never with markup). */
export function svg(tag, props = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  put(node, props);
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

/** A status badge: kind picks the colour (ok, warn, bad, info, muted). */
export function badge(text, kind = 'info', testid = 'badge') {
  return el('span', { className: `badge badge-${kind}`, 'data-testid': testid, 'data-value': text, text });
}

const STATUS_KIND = {
  active: 'ok',
  suspended: 'bad',
  revoked: 'muted',
  throttled: 'warn',
  exhausted: 'muted',
  paused: 'bad',
  tainted: 'warn',
  open: 'bad',
  acknowledged: 'warn',
  resolved: 'muted',
  critical: 'bad',
  high: 'bad',
  warning: 'warn',
  info: 'info',
  verified: 'ok',
  failed: 'bad',
  unchecked: 'warn',
  succeeded: 'ok',
  queued: 'info',
  running: 'info',
  denied: 'bad',
  expired: 'warn',
  cancelled: 'muted',
  timed_out: 'bad',
  memory_exceeded: 'bad',
  approve: 'ok',
  deny: 'bad',
  pending: 'warn',
};

/** A badge for a status word, coloured by what the word means. */
export const statusBadge = (status, testid = 'badge') => badge(String(status), STATUS_KIND[status] ?? 'info', testid);

export function link(href, text, props = {}) {
  return el('a', { href, text, ...props });
}

export const agentHref = (id) => `#/agents/${encodeURIComponent(id)}`;
export const taskHref = (id, recordId) =>
  `#/tasks/${encodeURIComponent(id)}${recordId ? `?record=${encodeURIComponent(recordId)}` : ''}`;
export const recordHref = (id) => `#/records/${encodeURIComponent(id)}`;

/** A definition list from [label, value-or-node, testid?] rows. */
export function facts(rows) {
  const dl = el('dl', { className: 'meta' });
  for (const [label, value, testid] of rows) {
    if (value === undefined) continue;
    dl.append(
      el('dt', { text: label }),
      el('dd', { 'data-testid': testid }, value instanceof Node ? value : String(value)),
    );
  }
  return dl;
}

export function pre(text, testid, className = 'code') {
  return el('pre', { className, 'data-testid': testid, tabindex: '0', text });
}

export function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? '') : d.toLocaleString();
}

export function relative(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  if (Number.isNaN(ms)) return '';
  const s = Math.round(Math.abs(ms) / 1000);
  const span =
    s < 90
      ? `${s} s`
      : s < 5400
        ? `${Math.round(s / 60)} min`
        : s < 172800
          ? `${Math.round(s / 3600)} h`
          : `${Math.round(s / 86400)} d`;
  return ms >= 0 ? `in ${span}` : `${span} ago`;
}

/** A time with its distance from now, e.g. "12/2/2026, 13:05:01 (3 min ago)". */
export function when(iso) {
  return el(
    'span',
    {},
    el('time', { datetime: iso, text: formatTime(iso) }),
    el('span', { className: 'muted', text: ` (${relative(iso)})` }),
  );
}

/** Money as people read it: small amounts keep three significant digits. */
export function money(n) {
  const v = Number(n) || 0;
  if (v === 0) return '0';
  if (Math.abs(v) < 0.01) return String(Number(v.toPrecision(3)));
  return v.toFixed(v >= 100 ? 2 : 4).replace(/\.?0+$/, '');
}

/** A bar of used against a cap, with the figures as text beside it. */
export function meter(used, max, label, testid) {
  const safeMax = Number(max) > 0 ? Number(max) : 1;
  return el(
    'span',
    { className: 'meter-wrap', 'data-testid': testid },
    el('meter', {
      min: '0',
      max: String(safeMax),
      value: String(Math.min(Number(used) || 0, safeMax)),
      high: String(safeMax * 0.8),
      optimum: '0',
      'aria-label': label,
    }),
    el('span', { className: 'meter-text', text: label }),
  );
}

/** Renders into `host` only when `data` differs from what it last rendered (polls keep the DOM still). */
const rendered = new WeakMap();
export function renderIfChanged(host, data, build) {
  const key = JSON.stringify(data);
  if (rendered.get(host) === key) return false;
  rendered.set(host, key);
  host.replaceChildren(...[build()].flat().filter(Boolean));
  return true;
}

/** "1 agent", "2 agents". */
export const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Milliseconds as people read them: 3.2 ms, 154 ms, 1.2 s. */
export function ms(n) {
  const v = Number(n) || 0;
  if (v < 10) return `${v.toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(1)} s`;
}

/** Agent names by id, read at most every 10 s (the alerts and tasks pages name agents). */
let names = { at: 0, map: new Map() };
export async function agentNames(api) {
  if (Date.now() - names.at < 10_000) return names.map;
  const r = await api('GET', '/v1/agents?limit=500');
  if (r.ok) names = { at: Date.now(), map: new Map((r.data.agents ?? []).map((a) => [a.id, a.name])) };
  return names.map;
}

/** An agent's name, with its id beside it in small print. */
export function agentLabel(map, id) {
  const name = map.get(id);
  return name ? `${name} (${id})` : id;
}
