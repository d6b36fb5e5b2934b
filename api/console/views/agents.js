// Agents: every agent with its standing, what it did in the last hour, what it spent today
// against its cap and its unresolved alerts, the ones that need a human first.
import { agentHref, badge, el, link, meter, money, plural, renderIfChanged, statusBadge } from '../lib/dom.js';

const RANK = { critical: 3, high: 2, warning: 1, info: 0 };

/** Alerts first (worst first), then suspended, then the rest newest first. */
export function byAttention(a, b) {
  const sa = a.openAlerts ? 10 + (RANK[a.worstOpenSeverity] ?? 0) : a.status === 'suspended' ? 5 : 0;
  const sb = b.openAlerts ? 10 + (RANK[b.worstOpenSeverity] ?? 0) : b.status === 'suspended' ? 5 : 0;
  return sb - sa || String(b.createdAt).localeCompare(String(a.createdAt));
}

/** The badges of an agent: its standing, a throttle, its open alerts. */
export function agentBadges(a) {
  return el(
    'span',
    { className: 'badges' },
    statusBadge(a.status, 'agent-status'),
    a.throttled ? badge('throttled', 'warn', 'agent-throttled') : null,
    a.openAlerts
      ? badge(
          `${a.openAlerts} open alert${a.openAlerts === 1 ? '' : 's'} · ${a.worstOpenSeverity}`,
          'bad',
          'agent-alerts',
        )
      : null,
  );
}

export const grantsText = (g) =>
  [
    g.profiles?.length ? `profiles: ${g.profiles.join(', ')}` : null,
    g.tools?.length ? `tools: ${g.tools.join(', ')}` : null,
    g.destinations?.length ? `destinations: ${g.destinations.join(', ')}` : null,
  ]
    .filter(Boolean)
    .join(' · ') || 'nothing granted';

function row(a) {
  const h = a.lastHour;
  return el(
    'tr',
    { 'data-testid': 'agent-row', 'data-agent-id': a.id, className: a.openAlerts ? 'attention' : '' },
    el(
      'td',
      {},
      link(agentHref(a.id), a.name, { 'data-testid': 'agent-link', className: 'strong' }),
      el('div', { className: 'muted small mono', text: a.id }),
    ),
    el('td', {}, agentBadges(a)),
    el('td', {
      'data-testid': 'agent-last-hour',
      text: `${h.runs} runs · ${h.toolCalls} tool calls${h.refused ? ` · ${h.refused} refused` : ''}`,
    }),
    el(
      'td',
      {},
      meter(
        a.today.spent + a.today.reserved,
        a.today.cap,
        `${money(a.today.spent)} of ${money(a.today.cap)}${a.today.reserved ? ` (+${money(a.today.reserved)} held)` : ''}`,
        'agent-spend',
      ),
    ),
    el('td', { className: 'small', text: grantsText(a.grants) }),
    el('td', {
      className: 'small',
      text: `${a.limits.runsPerMinute} runs/min · ${a.limits.toolCallsPerMinute} calls/min`,
    }),
  );
}

export function agentTable(agents) {
  if (!agents.length) return el('p', { className: 'empty', 'data-testid': 'empty', text: 'No agents yet.' });
  return el(
    'table',
    { className: 'table', 'data-testid': 'agent-table' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ...['Agent', 'Status', 'Last hour', 'Spend today', 'Grants', 'Limits'].map((t) =>
          el('th', { scope: 'col', text: t }),
        ),
      ),
    ),
    el('tbody', {}, ...agents.map(row)),
  );
}

export function mount(root, ctx) {
  const summary = el('p', { className: 'muted', 'data-testid': 'agents-summary' });
  const host = el('div');
  root.append(el('h2', { text: 'Agents' }), summary, host);
  return {
    async refresh() {
      const r = await ctx.api('GET', '/v1/agents?limit=500');
      if (!ctx.alive() || r.stale) return;
      if (!r.ok) return ctx.status(`Could not load the agents: ${r.error.message}`, 'stale');
      const agents = [...(r.data.agents ?? [])].sort(byAttention);
      const alerting = agents.filter((a) => a.openAlerts).length;
      const suspended = agents.filter((a) => a.status === 'suspended').length;
      summary.textContent = `${plural(agents.length, 'agent')} · ${alerting} with open alerts · ${suspended} suspended · updated ${new Date().toLocaleTimeString()}`;
      renderIfChanged(host, agents, () => agentTable(agents));
    },
  };
}
