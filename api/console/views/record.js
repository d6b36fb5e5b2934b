// One audit record, as an alert links to it: what it says, who it names, its place in the task's
// timeline, and whether it matches the audit files.
import { agentHref, el, facts, link, pre, renderIfChanged, statusBadge, taskHref, when } from '../lib/dom.js';

export function mount(root, ctx) {
  const host = el('div');
  root.append(el('h2', { text: 'Audit record' }), host);
  let loaded = false;
  return {
    // A record never changes, and its check reads the audit files: loaded once, not every refresh.
    async refresh() {
      if (loaded) return;
      const r = await ctx.api('GET', `/v1/audit/records/${encodeURIComponent(ctx.id)}`);
      if (!ctx.alive() || r.stale) return;
      loaded = true;
      if (!r.ok)
        return renderIfChanged(host, r.error, () =>
          el('p', { className: 'status error', 'data-testid': 'load-error', text: r.error.message }),
        );
      const { record: x, story, people, verification } = r.data;
      const check = verification.records[x.id];
      const who = (id) => (id ? `${people[id]?.name ?? id} (${people[id]?.role ?? 'unknown'})` : undefined);
      renderIfChanged(host, { x, check }, () => [
        el('p', { className: 'reasoning', 'data-testid': 'story-line', text: story }),
        facts([
          ['Kind', x.kind, 'record-kind'],
          ['Time', when(x.time)],
          ['Agent', x.agentId ? link(agentHref(x.agentId), x.agentId, { className: 'mono' }) : undefined],
          [
            'Task',
            x.taskId
              ? link(taskHref(x.taskId, x.id), `${x.taskId} (in its timeline)`, {
                  className: 'mono',
                  'data-testid': 'record-task-link',
                })
              : undefined,
          ],
          ['By', who(x.principalId)],
          ['About', x.subject],
          [
            'Audit check',
            el(
              'span',
              {},
              statusBadge(check?.status ?? 'unchecked', 'verify-badge'),
              ` ${check?.reason ?? 'its chain verifies through it and this copy equals the file’s'}`,
            ),
          ],
          ['Chain', `${x.writer} #${x.seq}`],
          ['Hash', x.hash],
          ['Previous', x.prev],
        ]),
        el('h4', { text: 'Data' }),
        pre(JSON.stringify(x.data, null, 2), 'record-data'),
      ]);
    },
  };
}
