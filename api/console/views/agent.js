// One agent: its grants and limits, standing, today's spend, the last hour, a chart of its
// activity, its alerts and tasks, and the buttons that stop it (operator, admin) or revoke it
// (admin). Auditors and admins get its evidence pack from here.

import { agentControls } from '../lib/actions.js';
import { query } from '../lib/api.js';
import { activityChart } from '../lib/chart.js';
import { el, facts, link, meter, money, renderIfChanged, when } from '../lib/dom.js';
import { agentBadges } from './agents.js';
import { alertList } from './alerts.js';
import { taskTable } from './tasks.js';

export const RANGES = {
  hour: { label: 'Last hour, by minute', ms: 3_600_000, bucketS: 60 },
  day: { label: 'Last 24 hours, by half hour', ms: 86_400_000, bucketS: 1800 },
  week: { label: 'Last 7 days, by 6 hours', ms: 7 * 86_400_000, bucketS: 21_600 },
};

/** A range picker and a chart host; `load(scope path)` fetches and draws. */
export function chartPanel(ctx, path, testid = 'activity-chart') {
  const picker = el(
    'select',
    { 'data-testid': 'chart-range', 'aria-label': 'Chart range' },
    ...Object.entries(RANGES).map(([k, r]) => el('option', { value: k, text: r.label })),
  );
  const host = el('div', { className: 'chart-host' });
  picker.addEventListener('change', () => ctx.refreshNow());
  const panel = el(
    'section',
    { className: 'panel' },
    el('div', { className: 'panel-head' }, el('h3', { text: 'Activity and spend' }), picker),
    host,
  );
  return {
    panel,
    async load() {
      const range = RANGES[picker.value];
      const to = new Date();
      const from = new Date(to.getTime() - range.ms);
      const r = await ctx.api(
        'GET',
        `${path}/activity${query({ from: from.toISOString(), to: to.toISOString(), bucketS: range.bucketS })}`,
      );
      if (!ctx.alive() || r.stale || !r.ok) return;
      renderIfChanged(host, { k: picker.value, b: r.data.buckets }, () => activityChart(r.data, testid));
    },
  };
}

export function mount(root, ctx) {
  const id = ctx.id;
  const head = el('div', { className: 'page-head' });
  const controls = el('div');
  const info = el('div', { className: 'panel' });
  const chart = chartPanel(ctx, `/v1/agents/${encodeURIComponent(id)}`);
  const alerts = el('div');
  const tasks = el('div');
  root.append(
    head,
    controls,
    info,
    chart.panel,
    el('section', { className: 'panel' }, el('h3', { text: 'Alerts not yet resolved' }), alerts),
    el(
      'section',
      { className: 'panel' },
      el(
        'div',
        { className: 'panel-head' },
        el('h3', { text: 'Tasks' }),
        link(`#/tasks${query({ agent: id })}`, 'all of its tasks'),
      ),
      tasks,
    ),
  );
  return {
    async refresh() {
      const path = `/v1/agents/${encodeURIComponent(id)}`;
      const [a, al, ts] = await Promise.all([
        ctx.api('GET', path),
        ctx.api('GET', `/v1/alerts${query({ agentId: id, limit: 50 })}`),
        ctx.api('GET', `/v1/tasks${query({ agentId: id, limit: 20 })}`),
      ]);
      if (!ctx.alive() || a.stale) return;
      if (!a.ok) {
        renderIfChanged(head, a.error, () => [
          el('h2', { text: 'Agent' }),
          el('p', { className: 'status error', 'data-testid': 'load-error', text: a.error.message }),
        ]);
        return;
      }
      const agent = a.data;
      renderIfChanged(
        head,
        { n: agent.name, s: agent.status, t: !!agent.throttled, o: agent.openAlerts, w: agent.worstOpenSeverity },
        () => [
          el('h2', {}, el('span', { 'data-testid': 'agent-name', text: agent.name }), ' ', agentBadges(agent)),
          el('p', { className: 'muted mono small', text: agent.id }),
        ],
      );
      // Rebuilt only when the standing changes, so a reason being typed survives the refreshes.
      renderIfChanged(controls, { s: agent.status, t: !!agent.throttled, role: ctx.me.role }, () => [
        agentControls(ctx, agent),
        ctx.can.evidence
          ? el(
              'p',
              {},
              link(`#/evidence/${encodeURIComponent(agent.id)}`, 'Evidence pack (printable)', {
                'data-testid': 'evidence-link',
              }),
            )
          : null,
      ]);
      const hold = agent.suspended ?? agent.throttled;
      const by = (id) => (agent.people?.[id] ? `${agent.people[id].name} (${agent.people[id].role})` : id);
      renderIfChanged(info, agent, () => [
        el('h3', { text: 'Grants, limits and spend' }),
        facts([
          ['Profiles', agent.grants.profiles.join(', ') || '(none)', 'grant-profiles'],
          ['Tools', agent.grants.tools.join(', ') || '(none)', 'grant-tools'],
          ['Destinations', agent.grants.destinations.join(', ') || '(none)', 'grant-destinations'],
          [
            'Limits',
            `${agent.limits.runsPerMinute} runs/min · ${agent.limits.toolCallsPerMinute} tool calls/min · ${money(agent.limits.spendPerDay)} per day`,
          ],
          [
            'Spend today',
            meter(
              agent.today.spent + agent.today.reserved,
              agent.today.cap,
              `${money(agent.today.spent)} of ${money(agent.today.cap)} (${money(agent.today.left)} left)`,
              'agent-spend',
            ),
          ],
          [
            'Last hour',
            `${agent.lastHour.runs} runs · ${agent.lastHour.toolCalls} tool calls · ${agent.lastHour.refused} refused · spend ${money(agent.lastHour.spend)}`,
            'agent-last-hour',
          ],
          ['Created', when(agent.createdAt)],
          agent.revokedAt ? ['Revoked', when(agent.revokedAt)] : ['Revoked', undefined],
          hold
            ? [
                agent.suspended ? 'Suspended' : 'Throttled',
                `by ${by(hold.by)}${hold.alertId ? ` (alert ${hold.alertId})` : ''}${hold.reason ? `: ${hold.reason}` : ''}`,
                'hold',
              ]
            : ['Hold', undefined],
        ]),
      ]);
      await chart.load();
      if (!ctx.alive()) return;
      if (al.ok) {
        const open = (al.data.alerts ?? []).filter((x) => x.status !== 'resolved');
        renderIfChanged(alerts, open, () =>
          open.length ? alertList(ctx, open, { compact: true }) : el('p', { className: 'muted', text: 'None.' }),
        );
      }
      if (ts.ok) renderIfChanged(tasks, ts.data.tasks, () => taskTable(ts.data.tasks ?? [], { showAgent: false }));
    },
  };
}
