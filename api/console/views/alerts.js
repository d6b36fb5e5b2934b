// Alerts: open and recent, what triggered them (the detector's figures and links to the audit
// records), what the service did about it, who handled it; acknowledge, resolve, resume what it
// paused or suspend the agent (operator, admin). New alerts appear with the next refresh.
import { alertControls } from '../lib/actions.js';
import {
  agentHref,
  agentLabel,
  agentNames,
  badge,
  el,
  facts,
  link,
  recordHref,
  renderIfChanged,
  statusBadge,
  taskHref,
  when,
} from '../lib/dom.js';

const DID = {
  alert: 'told a human (nothing stopped)',
  throttle: 'throttled the agent',
  pause_task: 'paused the task',
  suspend_agent: 'suspended the agent',
};

/** Alert ids this tab has already shown: later ones are marked new. */
const seen = new Set();
let primed = false;

function handled(by, at, reason) {
  if (!by) return undefined;
  return el('span', {}, `${by}, `, when(at), reason ? ` — “${reason}”` : '');
}

export function alertCard(ctx, a, { compact = false, fresh = false, names = new Map() } = {}) {
  const head = el(
    'header',
    { className: 'card-head' },
    statusBadge(a.severity, 'alert-severity'),
    el('h3', { 'data-testid': 'alert-detector', text: a.detector }),
    statusBadge(a.status, 'alert-status'),
    a.count > 1 ? badge(`fired ${a.count}×`, 'info') : null,
    fresh ? badge('new', 'bad', 'alert-new') : null,
  );
  const summary = el('p', { className: 'summary', 'data-testid': 'alert-summary', text: a.summary });
  const card = el(
    'article',
    {
      className: `card alert sev-${a.severity}${fresh ? ' new' : ''}`,
      'data-testid': 'alert-card',
      'data-alert-id': a.id,
    },
    head,
    summary,
  );
  const taskLink = a.taskId
    ? link(taskHref(a.taskId), 'Open the task timeline', { 'data-testid': 'alert-task-link' })
    : null;
  if (compact) {
    card.append(
      el(
        'p',
        { className: 'small' },
        when(a.raisedAt),
        ' · ',
        link(`#/alerts`, 'all alerts'),
        taskLink ? ' · ' : '',
        taskLink,
      ),
    );
    return card;
  }
  const figures = Array.isArray(a.evidence?.figures)
    ? a.evidence.figures.join(' · ')
    : JSON.stringify(a.evidence ?? {});
  card.append(
    facts([
      ['Agent', link(agentHref(a.agentId), agentLabel(names, a.agentId), { 'data-testid': 'alert-agent-link' })],
      ['Task', a.taskId ? link(taskHref(a.taskId), a.taskId, { className: 'mono' }) : '(none)'],
      ['Raised', when(a.raisedAt)],
      ['Last seen', a.count > 1 ? when(a.lastSeenAt) : undefined],
      ['The service', DID[a.action] ?? a.action, 'alert-action'],
      [
        'A resume lifts',
        a.resumes
          ? a.resumes.taskId
            ? `the pause of task ${a.resumes.taskId}`
            : `the suspension of agent ${a.resumes.agentId}`
          : undefined,
      ],
      ['Figures', figures, 'alert-figures'],
      ['Target', a.evidence?.target === undefined ? undefined : String(a.evidence.target)],
      ['Acknowledged', handled(a.acknowledgedBy, a.acknowledgedAt, a.status === 'acknowledged' ? a.reason : null)],
      ['Resolved', handled(a.resolvedBy, a.resolvedAt, a.status === 'resolved' ? a.reason : null)],
      [
        'Delivered',
        a.deliveries?.length
          ? `${a.deliveries.filter((d) => d.ok).length} of ${a.deliveries.length} deliveries ok`
          : 'no receivers configured',
      ],
    ]),
  );
  const records = el('ul', { className: 'records' });
  for (const id of a.auditIds ?? [])
    records.append(
      el('li', {}, link(recordHref(id), id, { 'data-testid': 'alert-record-link', className: 'mono small' })),
    );
  card.append(el('h4', { text: 'What triggered it (audit records, newest first)' }), records);
  if (taskLink) card.append(el('p', {}, taskLink));
  const controls = alertControls(ctx, a);
  if (controls) card.append(controls);
  return card;
}

export function alertList(ctx, alerts, opts = {}) {
  const list = el('div', { className: 'cards', 'data-testid': 'alert-list' });
  for (const a of alerts)
    list.append(alertCard(ctx, a, { ...opts, fresh: primed && !seen.has(a.id) && !opts.compact }));
  return list;
}

export function mount(root, ctx) {
  const filter = el(
    'select',
    { 'data-testid': 'alert-filter', 'aria-label': 'Which alerts' },
    el('option', { value: 'unresolved', text: 'Open and acknowledged' }),
    el('option', { value: 'all', text: 'All recent' }),
    el('option', { value: 'resolved', text: 'Resolved' }),
  );
  const summary = el('p', { className: 'muted', 'data-testid': 'alerts-summary' });
  const host = el('div');
  // An alert's link (webhook, pager, Slack) names it: show it whatever its status, and go to it.
  const focus = ctx.query.get('alert');
  let focused = false;
  if (focus) filter.value = 'all';
  filter.addEventListener('change', () => ctx.refreshNow());
  root.append(el('h2', { text: 'Alerts' }), el('div', { className: 'toolbar' }, filter), summary, host);
  return {
    async refresh() {
      const [r, names] = await Promise.all([ctx.api('GET', '/v1/alerts?limit=200'), agentNames(ctx.api)]);
      if (!ctx.alive() || r.stale) return;
      if (!r.ok) return ctx.status(`Could not load the alerts: ${r.error.message}`, 'stale');
      const all = r.data.alerts ?? [];
      const shown = all.filter((a) =>
        filter.value === 'all' ? true : filter.value === 'resolved' ? a.status === 'resolved' : a.status !== 'resolved',
      );
      const open = all.filter((a) => a.status === 'open').length;
      summary.textContent = `${open} open · ${all.length - open} acknowledged or resolved · updated ${new Date().toLocaleTimeString()}`;
      renderIfChanged(host, { f: filter.value, shown, role: ctx.me.role, n: [...names] }, () =>
        shown.length
          ? alertList(ctx, shown, { names })
          : el('p', { className: 'empty', 'data-testid': 'empty', text: 'No alerts here.' }),
      );
      for (const a of all) seen.add(a.id);
      primed = true;
      const target = focus && !focused ? host.querySelector(`[data-alert-id="${CSS.escape(focus)}"]`) : null;
      if (target) {
        target.classList.add('target');
        target.scrollIntoView({ block: 'start' });
        focused = true;
      }
    },
  };
}
