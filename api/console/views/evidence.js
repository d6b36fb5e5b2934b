// The evidence pack of an agent (auditor, admin), printable: who created it and granted what,
// every token issued, every approval with its approver, every alert and who handled it, the
// changes of its standing — each row citing its audit record and that record's check.
import { query } from '../lib/api.js';
import { el, facts, formatTime, renderIfChanged, statusBadge } from '../lib/dom.js';

const list = (xs) => (Array.isArray(xs) && xs.length ? xs.join(', ') : '(none)');

/** What the agent was granted and its limits, as the creation record holds them. */
function grantList(g, l) {
  return el(
    'div',
    { 'data-testid': 'evidence-grants' },
    facts([
      ['Profiles', list(g?.profiles)],
      ['Tools', list(g?.tools)],
      ['Destinations', list(g?.destinations)],
      [
        'Limits',
        l
          ? `${l.runsPerMinute} runs/min · ${l.toolCallsPerMinute} tool calls/min · ${l.spendPerDay} spend per day`
          : '(none recorded)',
      ],
    ]),
  );
}

const localInput = (iso) => {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
};

function table(testid, heads, rows) {
  if (!rows.length)
    return el('p', { className: 'muted', 'data-testid': `${testid}-empty`, text: 'None in this period.' });
  return el(
    'table',
    { className: 'table evidence', 'data-testid': testid },
    el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', { scope: 'col', text: h })))),
    el(
      'tbody',
      {},
      ...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c instanceof Node ? c : String(c ?? '–'))))),
    ),
  );
}

export function mount(root, ctx) {
  const from = el('input', { type: 'datetime-local', 'data-testid': 'evidence-from', 'aria-label': 'From' });
  const to = el('input', { type: 'datetime-local', 'data-testid': 'evidence-to', 'aria-label': 'To' });
  const apply = el('button', { type: 'button', 'data-testid': 'evidence-apply', text: 'Show this period' });
  const print = el('button', {
    type: 'button',
    'data-testid': 'evidence-print',
    text: 'Print',
    onclick: () => window.print(),
  });
  const json = el('code', { 'data-testid': 'evidence-json', className: 'small' });
  const host = el('div');
  let period = { from: ctx.query.get('from') ?? undefined, to: ctx.query.get('to') ?? undefined };
  let loaded = false;
  apply.addEventListener('click', () => {
    period = {
      from: from.value ? new Date(from.value).toISOString() : undefined,
      to: to.value ? new Date(to.value).toISOString() : undefined,
    };
    loaded = false;
    ctx.refreshNow();
  });
  root.append(
    el('h2', { text: 'Evidence pack' }),
    el(
      'div',
      { className: 'toolbar no-print' },
      el('label', { text: 'From' }),
      from,
      el('label', { text: 'To' }),
      to,
      apply,
      print,
    ),
    host,
  );
  return {
    // An evidence pack is a document: loaded once per period asked for, not refreshed under the reader.
    async refresh() {
      if (loaded) return;
      const path = `/v1/agents/${encodeURIComponent(ctx.id)}/evidence${query(period)}`;
      const r = await ctx.api('GET', path);
      if (!ctx.alive() || r.stale) return;
      loaded = true;
      if (!r.ok)
        return renderIfChanged(host, r.error, () =>
          el('p', { className: 'status error', 'data-testid': 'load-error', text: r.error.message }),
        );
      const e = r.data;
      from.value = localInput(e.period.from);
      to.value = localInput(e.period.to);
      json.textContent = `The same pack as JSON: GET ${path}`;
      const who = (id) => (id ? `${e.people[id]?.name ?? id} (${e.people[id]?.role ?? 'unknown'})` : '–');
      const check = (auditId) => {
        const c = auditId ? e.verification.records[auditId] : null;
        return el(
          'span',
          { className: 'nowrap' },
          statusBadge(c?.status ?? 'unchecked', 'verify-badge'),
          ' ',
          el('span', { className: 'mono small', text: auditId ?? '–' }),
        );
      };
      const v = e.verification;
      renderIfChanged(host, e.generatedAt, () => [
        el(
          'section',
          { className: 'panel', 'data-testid': 'evidence-agent' },
          el('h3', {}, `Agent ${e.agent.name} `, statusBadge(e.agent.status)),
          el('p', { className: 'mono small', text: e.agent.id }),
          el('p', {
            text: `Period ${formatTime(e.period.from)} – ${formatTime(e.period.to)}. Generated ${formatTime(e.generatedAt)} by ${who(e.generatedBy)}.`,
          }),
          el(
            'p',
            { className: v.counts.failed ? 'bad-text' : '', 'data-testid': 'evidence-verification' },
            el('strong', { text: 'Audit check of the cited records: ' }),
            `${v.counts.verified} verified, ${v.counts.failed} failed, ${v.counts.unchecked} unchecked of ${e.auditIds.length}; the audit directory check ${v.directory.ok ? 'passed' : 'FAILED'} (${v.directory.records} records in ${v.directory.chains} chains)${v.directory.error ? `: ${v.directory.error}` : ''}.`,
            e.truncated ? ' The period held more records than one pack reads: narrow it.' : '',
          ),
          el('p', { className: 'no-print' }, json),
        ),
        el(
          'section',
          { className: 'panel' },
          el('h3', { text: 'Created and granted' }),
          e.created
            ? el(
                'div',
                { 'data-testid': 'evidence-created' },
                el('p', {}, `Created ${formatTime(e.created.at)} by ${who(e.created.by)} `, check(e.created.auditId)),
                el('h4', { text: 'Granted (fixed at creation)' }),
                grantList(e.created.grants, e.created.limits),
              )
            : el('p', {
                className: 'muted',
                text: 'No creation record is in the audit index (created before the index kept it).',
              }),
        ),
        el(
          'section',
          { className: 'panel' },
          el('h3', { text: 'Tokens issued' }),
          table(
            'evidence-tokens',
            ['Issued', 'By', 'Expires', 'TTL s', 'Scopes', 'Task', 'Record'],
            e.tokens.map((t) => [
              formatTime(t.at),
              who(t.by),
              formatTime(t.expiresAt),
              t.ttlSeconds,
              t.scopes ? JSON.stringify(t.scopes) : 'all grants',
              t.taskId,
              check(t.auditId),
            ]),
          ),
        ),
        el(
          'section',
          { className: 'panel' },
          el('h3', { text: 'Approvals' }),
          table(
            'evidence-approvals',
            ['Tool', 'Asked', 'Why', 'Decision', 'By', 'Reason', 'Record'],
            e.approvals.map((a) => [
              a.tool,
              a.requested ? formatTime(a.requested.at) : '(before the period)',
              a.requested?.reasoning ?? '–',
              statusBadge(a.decision),
              who(a.by),
              a.reason,
              check(a.auditId ?? a.requested?.auditId),
            ]),
          ),
        ),
        el(
          'section',
          { className: 'panel' },
          el('h3', { text: 'Alerts and who handled them' }),
          table(
            'evidence-alerts',
            ['Raised', 'Detector', 'Severity', 'Summary', 'Response', 'Acknowledged', 'Resolved', 'Now', 'Record'],
            e.alerts.map((a) => [
              formatTime(a.raisedAt),
              a.detector,
              statusBadge(a.severity),
              a.summary,
              a.response,
              a.acknowledged
                ? `${who(a.acknowledged.by)} ${formatTime(a.acknowledged.at)}${a.acknowledged.reason ? ` “${a.acknowledged.reason}”` : ''}`
                : '–',
              a.resolved
                ? `${who(a.resolved.by)} ${formatTime(a.resolved.at)}${a.resolved.reason ? ` “${a.resolved.reason}”` : ''}`
                : '–',
              statusBadge(a.status),
              check(a.auditId),
            ]),
          ),
        ),
        el(
          'section',
          { className: 'panel' },
          el('h3', { text: 'Standing: revocations, suspensions, throttles, paused tasks, resumes' }),
          table(
            'evidence-standing',
            ['When', 'What', 'By', 'Reason', 'Alert', 'Task', 'Record'],
            e.standing.map((s) => [
              formatTime(s.at),
              s.kind,
              who(s.by),
              s.reason,
              s.alertId,
              s.taskId,
              check(s.auditId),
            ]),
          ),
        ),
        el(
          'section',
          { className: 'panel' },
          el('h3', { text: 'Tasks opened' }),
          table(
            'evidence-tasks',
            ['Opened', 'Goal', 'Task', 'Record'],
            e.tasks.map((t) => [formatTime(t.at), t.goal, t.taskId, check(t.auditId)]),
          ),
        ),
      ]);
    },
  };
}
