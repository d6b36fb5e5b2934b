// One task: its budget, taint and pause, a chart of its activity, and its trace as a timeline
// read from the audit trail — what was asked and why, what was decided (policies, approvals and
// by whom), what ran, what came back, what it cost — each record with the result of checking it
// against the audit files (verified / failed / unchecked, and why).
import { taskControls } from '../lib/actions.js';
import {
  agentHref,
  agentLabel,
  agentNames,
  badge,
  el,
  facts,
  link,
  meter,
  money,
  ms,
  pre,
  renderIfChanged,
  statusBadge,
  when,
} from '../lib/dom.js';
import { chartPanel } from './agent.js';
import { spendMeter, taskBadges } from './tasks.js';

const CATEGORY = {
  'task.created': 'asked',
  'execution.requested': 'asked',
  'action.requested': 'asked',
  'usage.reported': 'asked',
  'execution.refused': 'decided',
  'action.refused': 'decided',
  'approval.decided': 'decided',
  'approval.expired': 'decided',
  'run.started': 'ran',
  'action.started': 'ran',
  'run.finished': 'came back',
  'action.finished': 'came back',
};
const category = (kind) =>
  CATEGORY[kind] ??
  (kind.startsWith('alert.') || kind.startsWith('agent.') || kind.startsWith('task.') ? 'watch' : 'other');

const nameOf = (people, id) => (id && people?.[id] ? `${people[id].name} (${people[id].role})` : (id ?? 'unknown'));

function block(label, node) {
  return el('div', { className: 'detail' }, el('h4', { text: label }), node);
}

function reasoning(text) {
  return block(
    'Why (the agent’s reasoning)',
    el('p', {
      className: text ? 'reasoning' : 'reasoning muted',
      'data-testid': 'reasoning',
      text: text || '(none given)',
    }),
  );
}

function capped(c, testid, label) {
  if (!c || typeof c.text !== 'string') return null;
  const note = c.cut ? ` (first part of ${c.bytes} bytes, sha256 ${String(c.sha256).slice(0, 12)}…)` : '';
  return block(`${label}${note}`, pre(c.text, testid));
}

const policies = (d) => (d?.policies?.length ? `allowed by ${d.policies.join(', ')}` : 'allowed');

/** Title and details of one record, by its kind; unknown kinds fall back to the story line. */
function describe(r, people) {
  const d = r.data ?? {};
  switch (r.kind) {
    case 'task.created':
      return [
        'Task opened',
        [
          block('Goal', el('p', { className: 'reasoning', 'data-testid': 'goal', text: d.goal })),
          block('Budget', el('p', { 'data-testid': 'budget', text: budgetText(d.budget) })),
        ],
      ];
    case 'execution.requested':
      return [
        `Asked to run ${d.profile} code`,
        [
          reasoning(d.reasoning),
          capped(d.code, 'code', 'Code'),
          capped(d.stdin, 'stdin', 'Stdin'),
          block(
            'Decided',
            el('p', {
              'data-testid': 'decision',
              text: `${policies(d.decision)}; reserved worst case ${money(d.budget?.reserved)}`,
            }),
          ),
        ],
      ];
    case 'execution.refused':
    case 'action.refused':
      return [
        `Refused: ${d.refused?.code} (${r.kind === 'action.refused' ? d.tool : d.profile})`,
        [
          el('p', { className: 'bad-text', 'data-testid': 'refusal', text: d.refused?.message ?? '' }),
          reasoning(d.reasoning),
          d.args ? block('Arguments', pre(JSON.stringify(d.args, null, 2), 'args')) : null,
        ],
      ];
    case 'run.started':
      return [`Run started on ${d.profile}`, []];
    case 'run.finished': {
      const u = d.usage;
      return [
        el('span', {}, 'Run ended ', statusBadge(d.status, 'run-status')),
        [
          el('p', {
            'data-testid': 'usage',
            text: `exit ${d.exitCode ?? '–'}${u ? ` · cpu ${ms(u.cpuMs)} · wall ${ms(u.wallMs)} · memory ${Math.round((u.memoryBytes ?? 0) / 1048576)} MiB` : ''} · cost ${money(u?.cost)}${u?.measured === false ? ' (worst case: not measured)' : ''}`,
          }),
          d.error ? el('p', { className: 'bad-text', text: `${d.error.code}: ${d.error.message}` }) : null,
          capped(d.stdout, 'output', 'Stdout'),
          d.stderr?.text ? capped(d.stderr, 'stderr', 'Stderr') : null,
          d.result ? capped(d.result, 'result', 'Result') : null,
        ],
      ];
    }
    case 'action.requested':
      return [
        el(
          'span',
          {},
          `Asked to call ${d.tool} `,
          d.tainted ? badge('task tainted', 'warn') : null,
          d.untrusted ? badge('untrusted arguments', 'warn') : null,
        ),
        [
          reasoning(d.reasoning),
          block('Arguments', pre(JSON.stringify(d.args, null, 2), 'args')),
          block(
            'Decided',
            el('p', {
              'data-testid': 'decision',
              text: `${policies(d.decision)}; reserved ${money(d.budget?.reserved)}${d.approval ? `; waits for a human approver (${d.approval.required})` : ''}`,
            }),
          ),
        ],
      ];
    case 'approval.decided':
      return [
        el('span', {}, `${nameOf(people, d.by)} `, statusBadge(d.decision, 'approval-decision'), ` ${d.tool}`),
        [
          d.reason ? el('p', { className: 'reasoning', text: `“${d.reason}”` }) : null,
          el('p', { className: 'muted small mono', text: `approval ${d.approvalId} · arguments ${d.argsHash}` }),
        ],
      ];
    case 'approval.expired':
      return [`Nobody decided on ${d.tool} in time: expired, not sent`, []];
    case 'action.started':
      return [`Calling ${d.tool}${d.approvalId ? ` (approval ${d.approvalId})` : ''}`, []];
    case 'action.finished': {
      const egress = Array.isArray(d.egress) ? d.egress : [];
      return [
        el('span', {}, `${d.tool} ended `, statusBadge(d.status, 'action-status')),
        [
          el('p', {
            'data-testid': 'usage',
            text: `cost ${money(d.cost)}${d.untrustedSource ? ` · untrusted result from ${d.untrustedSource}` : ''}`,
          }),
          d.error ? el('p', { className: 'bad-text', text: `${d.error.code}: ${d.error.message}` }) : null,
          capped(d.result, 'output', 'What came back'),
          egress.length
            ? block('Network decisions', pre(egress.map((e) => JSON.stringify(e)).join('\n'), 'egress', 'code small'))
            : null,
        ],
      ];
    }
    case 'usage.reported':
      return [
        `Model usage reported: ${d.tokens} tokens, cost ${money(d.cost)}`,
        [reasoning(d.reasoning), capped(d.prompt, 'prompt', 'Prompt')],
      ];
    case 'alert.raised':
      return [
        el('span', {}, 'ALERT ', statusBadge(d.severity), ` ${d.detector}`),
        [
          el('p', { 'data-testid': 'alert-summary', text: d.summary }),
          el('p', { className: 'small', text: `the service responded: ${d.response}` }),
          el('p', {}, link('#/alerts', 'Handle it on the alerts page')),
        ],
      ];
    default:
      return [null, []];
  }
}

const budgetText = (b) =>
  b && typeof b === 'object'
    ? `at most ${b.maxRuns} runs, ${b.maxToolCalls} tool calls, ${b.maxTokens} model tokens, spend ${money(b.maxSpend)}`
    : String(b ?? '');

function costOf(r) {
  if (r.kind === 'run.finished') return Number(r.data?.usage?.cost) || 0;
  if (r.kind === 'action.finished' || r.kind === 'usage.reported') return Number(r.data?.cost) || 0;
  return 0;
}

function verifyBadge(check) {
  const status = check?.status ?? 'unchecked';
  const b = statusBadge(status, 'verify-badge');
  b.setAttribute('title', check?.reason ?? (check ? 'matches the audit file; its chain verifies' : 'not checked yet'));
  return b;
}

function timelineItem(r, story, people, check) {
  const [title, details] = describe(r, people);
  // Kinds without a view of their own read as their story line, less the time and subject shown beside it.
  const plain = String(story)
    .replace(`${r.time} `, '')
    .replace(r.subject ? `${r.subject} ` : '\u0000', '');
  const cat = category(r.kind);
  return el(
    'li',
    {
      className: `item cat-${cat.replace(' ', '-')}`,
      id: `rec-${r.id}`,
      'data-testid': 'timeline-item',
      'data-kind': r.kind,
      'data-audit-id': r.id,
    },
    el(
      'div',
      { className: 'when' },
      el('time', { datetime: r.time, text: new Date(r.time).toLocaleTimeString(undefined, { hour12: false }) }),
      badge(cat, 'info', 'category'),
    ),
    el(
      'div',
      { className: 'what' },
      el(
        'div',
        { className: 'item-title', 'data-testid': 'item-title' },
        title ?? plain,
        r.subject ? el('span', { className: 'muted small mono', text: ` · ${r.subject}` }) : null,
      ),
      ...details,
      el(
        'p',
        { className: 'item-foot muted small' },
        verifyBadge(check),
        ' ',
        el('span', { className: 'mono', text: r.id }),
        r.principalId ? ` · by ${nameOf(people, r.principalId)}` : '',
        check?.reason ? ` · ${check.reason}` : '',
      ),
    ),
  );
}

function verificationSummary(v, count, onAgain) {
  const again = el('button', { type: 'button', 'data-testid': 'verify-again', text: 'Check again', onclick: onAgain });
  if (!v)
    return el(
      'div',
      { className: 'verify', 'data-testid': 'verification-summary' },
      el('p', { text: 'Checking the records against the audit files…' }),
      again,
    );
  const c = v.counts;
  const dir = v.directory;
  return el(
    'div',
    { className: `verify ${c.failed ? 'bad' : ''}`, 'data-testid': 'verification-summary' },
    el(
      'p',
      {},
      el('strong', { text: 'Audit check: ' }),
      `${c.verified} verified, ${c.failed} failed, ${c.unchecked} unchecked of ${count} records. `,
      `Directory check ${dir.ok ? 'passed' : 'FAILED'} (${dir.records} records in ${dir.chains} chains)${dir.error ? `: ${dir.error}` : ''}. `,
      el('span', { className: 'muted', text: `Checked ${new Date(v.checkedAt).toLocaleTimeString()}.` }),
    ),
    el('p', {
      className: 'muted small',
      text: 'Verified: the record’s hash chain and signed checkpoints hold through it, and this copy equals the file’s. Unchecked: written by another process (verify its files there) or after the check.',
    }),
    again,
  );
}

export function mount(root, ctx) {
  const id = ctx.id;
  const path = `/v1/tasks/${encodeURIComponent(id)}`;
  const head = el('div', { className: 'page-head' });
  const controls = el('div');
  const budget = el('section', { className: 'panel' });
  const chart = chartPanel(ctx, path, 'task-chart');
  const verify = el('div');
  const timeline = el('ol', { className: 'timeline', 'data-testid': 'timeline' });
  root.append(
    head,
    controls,
    budget,
    chart.panel,
    el('section', { className: 'panel' }, el('h3', { text: 'Trace' }), verify, timeline),
  );
  let verification = null;
  let verifiedCount = -1;
  let force = true;
  let scrolled = false;

  const load = async (withVerify) => ctx.api('GET', `${path}/trace${withVerify ? '?verify=true' : ''}`);

  return {
    async refresh() {
      let r = await load(force);
      if (!ctx.alive() || r.stale) return;
      if (r.ok && !force && r.data.records.length !== verifiedCount) {
        r = await load(true); // new records: check them too
        if (!ctx.alive() || r.stale) return;
      }
      if (!r.ok) {
        renderIfChanged(head, r.error, () => [
          el('h2', { text: 'Task' }),
          el('p', { className: 'status error', 'data-testid': 'load-error', text: r.error.message }),
        ]);
        return;
      }
      if (r.data.verification) {
        verification = r.data.verification;
        verifiedCount = r.data.records.length;
        force = false;
      }
      const { task, records, story, people } = r.data;
      const names = await agentNames(ctx.api);
      if (!ctx.alive()) return;
      renderIfChanged(
        head,
        { g: task.goal, s: task.status, p: !!task.paused, t: task.tainted, n: names.get(task.agentId) },
        () => [
          el(
            'h2',
            {},
            el('span', { className: 'goal', 'data-testid': 'task-goal', text: task.goal }),
            ' ',
            taskBadges(task),
          ),
          el(
            'p',
            { className: 'muted small' },
            'Agent ',
            link(agentHref(task.agentId), agentLabel(names, task.agentId), { 'data-testid': 'task-agent-link' }),
            ' · ',
            el('span', { className: 'mono', text: task.id }),
            ' · started ',
            when(task.createdAt),
          ),
        ],
      );
      renderIfChanged(controls, { p: !!task.paused, role: ctx.me.role }, () => taskControls(ctx, task));
      const cost = records.reduce((n, x) => n + costOf(x), 0);
      renderIfChanged(budget, { task, cost }, () => [
        el('h3', { text: 'Budget' }),
        facts([
          ['Spend', spendMeter(task)],
          [
            'Runs',
            meter(
              task.used.runs,
              task.budget.maxRuns,
              `${task.used.runs} of ${task.budget.maxRuns} (${task.remaining.runs} left)`,
              'task-runs',
            ),
          ],
          [
            'Tool calls',
            meter(
              task.used.toolCalls,
              task.budget.maxToolCalls,
              `${task.used.toolCalls} of ${task.budget.maxToolCalls} (${task.remaining.toolCalls} left)`,
              'task-tool-calls',
            ),
          ],
          [
            'Model tokens',
            meter(
              task.used.tokens,
              task.budget.maxTokens,
              `${task.used.tokens} of ${task.budget.maxTokens}`,
              'task-tokens',
            ),
          ],
          ['Cost in the trace', `${money(cost)} (settled runs, tool calls and reported model cost)`, 'trace-cost'],
          [
            'Paused',
            task.paused
              ? `by ${task.paused.by}${task.paused.alertId ? ` (alert ${task.paused.alertId})` : ''}${task.paused.reason ? `: ${task.paused.reason}` : ''}`
              : undefined,
            'task-hold',
          ],
          [
            'Tainted by',
            task.tainted ? task.taintSources.join('; ') || '(no source recorded)' : undefined,
            'taint-sources',
          ],
          ['Declared scope', task.scope ? JSON.stringify(task.scope) : undefined],
        ]),
      ]);
      renderIfChanged(verify, { verification, n: records.length }, () =>
        verificationSummary(verification, records.length, () => {
          force = true;
          ctx.refreshNow();
        }),
      );
      renderIfChanged(timeline, { records, v: verification?.checkedAt ?? null }, () =>
        records.length
          ? records.map((x, i) => timelineItem(x, story[i] ?? x.kind, people, verification?.records?.[x.id]))
          : el('li', { className: 'muted', text: 'No records yet.' }),
      );
      const target = ctx.query.get('record');
      if (target && !scrolled) {
        const node = document.getElementById(`rec-${target}`);
        if (node) {
          node.classList.add('target');
          node.scrollIntoView({ block: 'center' });
          scrolled = true;
        }
      }
      await chart.load();
    },
  };
}
