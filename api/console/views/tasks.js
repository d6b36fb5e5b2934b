// Tasks: open and recent tasks with their budget used and left, taint and pause, newest first;
// filtered to one agent with #/tasks?agent=<id>.
import { query } from '../lib/api.js';
import {
  agentHref,
  agentLabel,
  agentNames,
  badge,
  el,
  link,
  meter,
  money,
  relative,
  renderIfChanged,
  statusBadge,
  taskHref,
} from '../lib/dom.js';

export function taskBadges(t) {
  return el(
    'span',
    { className: 'badges' },
    // "active" is the budget's word; a human reads a task as open, paused or exhausted.
    t.paused
      ? badge('paused', 'bad', 'task-paused')
      : t.status === 'active'
        ? badge('open', 'ok', 'task-status')
        : statusBadge(t.status, 'task-status'),
    t.tainted ? badge('tainted', 'warn', 'task-tainted') : null,
  );
}

/** Spend used (and held) against the task's cap, with what is left. */
export function spendMeter(t) {
  const held = t.reserved?.spend ?? 0;
  return meter(
    t.used.spend + held,
    t.budget.maxSpend,
    `${money(t.used.spend)} of ${money(t.budget.maxSpend)} spent, ${money(t.remaining.spend)} left${held ? ` (${money(held)} held)` : ''}`,
    'task-spend',
  );
}

function row(t, showAgent, names) {
  return el(
    'tr',
    { 'data-testid': 'task-row', 'data-task-id': t.id, className: t.paused ? 'attention' : '' },
    el(
      'td',
      {},
      link(taskHref(t.id), t.goal || '(no goal)', { 'data-testid': 'task-link', className: 'strong goal' }),
      el('div', { className: 'muted small mono', text: t.id }),
    ),
    showAgent ? el('td', {}, link(agentHref(t.agentId), agentLabel(names, t.agentId), { className: 'small' })) : null,
    el('td', {}, taskBadges(t)),
    el('td', {}, spendMeter(t)),
    el('td', {
      className: 'small',
      text: `${t.used.runs}/${t.budget.maxRuns} runs · ${t.used.toolCalls}/${t.budget.maxToolCalls} tool calls · ${t.used.tokens} tokens`,
    }),
    el('td', { className: 'small', text: relative(t.createdAt) }),
  );
}

export function taskTable(tasks, { showAgent = true, names = new Map() } = {}) {
  if (!tasks.length) return el('p', { className: 'empty', 'data-testid': 'empty', text: 'No tasks.' });
  const heads = ['Task', showAgent ? 'Agent' : null, 'Status', 'Budget (spend)', 'Used', 'Started'].filter(Boolean);
  return el(
    'table',
    { className: 'table', 'data-testid': 'task-table' },
    el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...tasks.map((t) => row(t, showAgent, names))),
  );
}

export function mount(root, ctx) {
  const agentId = ctx.query.get('agent') ?? '';
  const status = el(
    'select',
    { 'data-testid': 'task-filter', 'aria-label': 'Which tasks' },
    el('option', { value: 'all', text: 'Open and recent' }),
    el('option', { value: 'open', text: 'Open only' }),
  );
  const host = el('div');
  status.addEventListener('change', () => ctx.refreshNow());
  root.append(
    el('h2', { text: agentId ? 'Tasks of one agent' : 'Tasks' }),
    el('div', { className: 'toolbar' }, status, agentId ? link('#/tasks', 'All agents') : null),
    host,
  );
  return {
    async refresh() {
      const [r, names] = await Promise.all([
        ctx.api('GET', `/v1/tasks${query({ agentId, status: status.value, limit: 200 })}`),
        agentNames(ctx.api),
      ]);
      if (!ctx.alive() || r.stale) return;
      if (!r.ok) return ctx.status(`Could not load the tasks: ${r.error.message}`, 'stale');
      renderIfChanged(host, { t: r.data.tasks, n: [...names] }, () =>
        taskTable(r.data.tasks ?? [], { showAgent: !agentId, names }),
      );
    },
  };
}
