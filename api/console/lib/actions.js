// The buttons that act: suspend, resume and revoke an agent, resume a task, acknowledge and
// resolve an alert. Shown only to roles that may use them (operator, admin; revoke: admin); the
// API checks again. Each says what happened in the status line and refreshes the page at once.
import { el } from './dom.js';

async function act(ctx, button, what, call) {
  button.disabled = true;
  const r = await call();
  if (!ctx.alive()) return r;
  button.disabled = false;
  if (r.ok) {
    ctx.status(`${what}: done.`, 'success');
    ctx.refreshNow();
  } else {
    ctx.status(`Could not ${what.toLowerCase()}: ${r.error.message}`, 'error');
  }
  return r;
}

function button(label, testid, className, onclick) {
  return el('button', { type: 'button', className, 'data-testid': testid, text: label, onclick });
}

const reasonBody = (input) => {
  const reason = input.value.trim();
  return reason ? { reason } : {};
};

/** Suspend / resume (one click, optional reason) and revoke (reason required, then confirmed). */
export function agentControls(ctx, agent) {
  if (!ctx.can.act) return null;
  const id = encodeURIComponent(agent.id);
  const reason = el('input', {
    type: 'text',
    maxlength: '2000',
    autocomplete: 'off',
    'data-testid': 'action-reason',
    'aria-label': 'Reason (optional)',
    placeholder: 'Reason (optional, kept in the audit trail)',
  });
  const row = el('div', { className: 'buttons' });
  if (agent.status === 'active') {
    const b = button('Suspend agent', 'suspend', 'danger', () =>
      act(ctx, b, `Suspend ${agent.name}`, () => ctx.api('POST', `/v1/agents/${id}/suspend`, reasonBody(reason))),
    );
    row.append(b);
  }
  if (agent.status === 'suspended' || agent.throttled) {
    const b = button('Resume agent', 'resume', 'ok', () =>
      act(ctx, b, `Resume ${agent.name}`, () => ctx.api('POST', `/v1/agents/${id}/resume`, reasonBody(reason))),
    );
    row.append(b);
  }
  const box = el(
    'div',
    { className: 'controls', 'data-testid': 'agent-controls' },
    el('label', { text: 'Act on this agent' }),
    reason,
    row,
  );
  if (ctx.can.revoke && agent.status !== 'revoked') box.append(revokeFlow(ctx, agent));
  return box;
}

/** Revoke is final for the agent's tokens: a reason is required and a second click confirms. */
function revokeFlow(ctx, agent) {
  const id = encodeURIComponent(agent.id);
  const why = el('input', {
    type: 'text',
    maxlength: '2000',
    autocomplete: 'off',
    'data-testid': 'revoke-reason',
    'aria-label': 'Why revoke (required)',
    placeholder: 'Why revoke (required)',
  });
  const confirm = button('Confirm revoke', 'revoke-confirm', 'danger', () =>
    act(ctx, confirm, `Revoke ${agent.name}`, () =>
      ctx.api('POST', `/v1/agents/${id}/revoke`, { reason: why.value.trim() }),
    ),
  );
  confirm.disabled = true;
  why.addEventListener('input', () => {
    confirm.disabled = why.value.trim() === '';
  });
  const cancel = button('Cancel', 'revoke-cancel', '', () => {
    step.hidden = true;
    start.hidden = false;
  });
  const step = el(
    'div',
    { className: 'confirm', 'data-testid': 'revoke-step', hidden: true },
    el('p', {
      className: 'warn-text',
      text: `Revoking ${agent.name} refuses every token it has and cancels its queued and running work. Only an admin can enable it again, with new tokens.`,
    }),
    why,
    el('div', { className: 'buttons' }, confirm, cancel),
  );
  const start = button('Revoke…', 'revoke', 'danger-outline', () => {
    start.hidden = true;
    step.hidden = false;
    why.focus();
  });
  return el('div', { className: 'revoke' }, start, step);
}

export function taskControls(ctx, task) {
  if (!ctx.can.act) return null;
  const row = el('div', { className: 'buttons' });
  if (task.paused) {
    const b = button('Resume task', 'resume-task', 'ok', () =>
      act(ctx, b, 'Resume the task', () => ctx.api('POST', `/v1/tasks/${encodeURIComponent(task.id)}/resume`, {})),
    );
    row.append(b);
  }
  const s = button('Suspend its agent', 'suspend-agent', 'danger', () =>
    act(ctx, s, 'Suspend the agent', () =>
      ctx.api('POST', `/v1/agents/${encodeURIComponent(task.agentId)}/suspend`, { reason: `from task ${task.id}` }),
    ),
  );
  row.append(s);
  return el('div', { className: 'controls', 'data-testid': 'task-controls' }, row);
}

export function alertControls(ctx, alert) {
  if (!ctx.can.act) return null;
  const id = encodeURIComponent(alert.id);
  const reason = el('input', {
    type: 'text',
    maxlength: '2000',
    autocomplete: 'off',
    'data-testid': 'alert-reason',
    'aria-label': 'Reason (optional)',
    placeholder: 'Reason (optional)',
  });
  const row = el('div', { className: 'buttons' });
  const update = (status, label, testid) => {
    const b = button(label, testid, '', () =>
      act(ctx, b, `${label} alert ${alert.id}`, () =>
        ctx.api('POST', `/v1/alerts/${id}`, { status, ...reasonBody(reason) }),
      ),
    );
    row.append(b);
  };
  if (alert.status === 'open') update('acknowledged', 'Acknowledge', 'acknowledge');
  if (alert.status !== 'resolved') update('resolved', 'Resolve', 'resolve');
  if (alert.resumes?.taskId) {
    const b = button('Resume task', 'resume-task', 'ok', () =>
      act(ctx, b, 'Resume the task', () =>
        ctx.api('POST', `/v1/tasks/${encodeURIComponent(alert.resumes.taskId)}/resume`, reasonBody(reason)),
      ),
    );
    row.append(b);
  }
  if (alert.resumes?.agentId) {
    const b = button('Resume agent', 'resume-agent', 'ok', () =>
      act(ctx, b, 'Resume the agent', () =>
        ctx.api('POST', `/v1/agents/${encodeURIComponent(alert.resumes.agentId)}/resume`, reasonBody(reason)),
      ),
    );
    row.append(b);
  }
  const s = button('Suspend agent', 'suspend-agent', 'danger', () =>
    act(ctx, s, 'Suspend the agent', () =>
      ctx.api('POST', `/v1/agents/${encodeURIComponent(alert.agentId)}/suspend`, {
        reason: reason.value.trim() || `alert ${alert.id}`,
      }),
    ),
  );
  row.append(s);
  return el('div', { className: 'controls', 'data-testid': 'alert-controls' }, reason, row);
}
