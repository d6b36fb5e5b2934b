// The approvals console. Plain browser JavaScript, no build step, no framework.
// Everything the API returns (tool arguments, the agent's reasoning, taint sources, ids) comes
// from an agent and is untrusted: it is rendered only through textContent and createElement,
// never through innerHTML. The approver's token lives only in this tab's sessionStorage.

// The API and the DOM helpers are the operator console's (lib/): one sign-in serves both pages
// of this tab.
import { api, session } from './lib/api.js';
import { el, formatTime, relative } from './lib/dom.js';

const REFRESH_MS = 3000;
const FOLLOW_MS = 60_000;
const FINAL = ['succeeded', 'failed', 'denied', 'expired', 'cancelled'];

const $ = (id) => document.getElementById(id);
const ui = {
  session: $('session'),
  refresh: $('refresh'),
  signOut: $('sign-out'),
  status: $('status'),
  signInView: $('sign-in-view'),
  signInForm: $('sign-in-form'),
  token: $('token'),
  listView: $('list-view'),
  count: $('count'),
  updated: $('updated'),
  empty: $('empty'),
  cards: $('approvals'),
  log: $('log'),
};

/** id → card element of every approval on screen. */
const cards = new Map();
/** card → the "(in 4 min)" node next to its expiry time, refreshed with the list. */
const expiries = new WeakMap();
/** Approvals this tab has sent a decision for: a refresh never brings them back. */
const decided = new Set();
let timer = null;
let refreshing = false;

// --- small DOM helpers ---------------------------------------------------------------------

function showStatus(text, kind = 'info') {
  ui.status.textContent = text;
  ui.status.dataset.kind = kind;
  ui.status.className = `status ${kind}`;
  ui.status.hidden = false;
}

function clearStatus() {
  ui.status.textContent = '';
  ui.status.hidden = true;
  delete ui.status.dataset.kind;
}

// --- the API -------------------------------------------------------------------------------

/** 401, or a 403 that says this token lacks the approver role: the session is over. */
function endsSession(r) {
  return r.status === 401 || (r.status === 403 && r.error.code === 'forbidden');
}

function refused(r) {
  const why =
    r.status === 401
      ? 'The token was not accepted'
      : 'This token may not decide on approvals (it is not an approver token)';
  showStatus(`${why}: ${r.error.message}. Sign in again.`, 'error');
  signOut(false);
}

// --- rendering -----------------------------------------------------------------------------

function field(dl, label, value, testid) {
  dl.append(el('dt', { text: label }), el('dd', { text: value, 'data-testid': testid }));
}

function timeField(dl, label, iso, testid) {
  const time = el('time', { datetime: iso, text: formatTime(iso) });
  const rel = el('span', { className: 'muted', text: ` (${relative(iso)})` });
  dl.append(el('dt', { text: label }), el('dd', { 'data-testid': testid }, time, rel));
  return rel;
}

function renderCard(a) {
  const titleId = `title-${a.id}`;
  const reasonId = `reason-${a.id}`;
  const card = el('article', {
    className: a.tainted ? 'card tainted' : 'card',
    'data-testid': 'approval-card',
    'data-approval-id': a.id,
    'aria-labelledby': titleId,
  });

  const head = el('header', { className: 'card-head' }, el('h3', { id: titleId, 'data-testid': 'tool', text: a.tool }));
  if (a.tainted) head.append(el('span', { className: 'badge', 'data-testid': 'tainted-badge', text: 'TAINTED' }));
  card.append(head);

  if (a.tainted) {
    const sources = Array.isArray(a.taintSources) ? a.taintSources : [];
    const box = el('div', { className: 'taint', 'data-testid': 'taint-sources' });
    box.append(el('strong', { text: 'This task has read untrusted data. Its arguments may have been steered by it.' }));
    if (sources.length) {
      const list = el('ul');
      for (const s of sources) list.append(el('li', { text: s }));
      box.append(el('span', { text: ' Sources:' }), list);
    } else {
      box.append(el('span', { text: ' (no source recorded)' }));
    }
    card.append(box);
  }

  card.append(el('h4', { text: 'Arguments' }));
  card.append(
    el('pre', { className: 'args', 'data-testid': 'args', tabindex: '0', text: JSON.stringify(a.args, null, 2) }),
  );

  card.append(el('h4', { text: "Agent's stated reasoning" }));
  const reasoning = typeof a.reasoning === 'string' && a.reasoning.length > 0;
  card.append(
    el('p', {
      className: reasoning ? 'reasoning' : 'reasoning muted',
      'data-testid': 'reasoning',
      text: reasoning ? a.reasoning : '(none given)',
    }),
  );

  const dl = el('dl', { className: 'meta' });
  field(dl, 'Agent', a.agentId, 'agent-id');
  field(dl, 'Task', a.taskId ?? '(none)', 'task-id');
  timeField(dl, 'Requested', a.requestedAt, 'requested-at');
  const expires = timeField(dl, 'Expires', a.expiresAt, 'expires-at');
  field(dl, 'Approval', a.id, 'approval-id');
  field(dl, 'Arguments hash', a.argsHash, 'args-hash');
  card.append(dl);

  const reasonInput = el('input', {
    id: reasonId,
    type: 'text',
    maxlength: '2000',
    autocomplete: 'off',
    'data-testid': 'reason',
  });
  const approve = el('button', {
    type: 'button',
    className: 'approve',
    'data-testid': 'approve',
    'aria-describedby': titleId,
    text: 'Approve',
  });
  const deny = el('button', {
    type: 'button',
    className: 'deny',
    'data-testid': 'deny',
    'aria-describedby': titleId,
    text: 'Deny',
  });
  approve.addEventListener('click', () => decide(a, 'approve', card));
  deny.addEventListener('click', () => decide(a, 'deny', card));
  card.append(
    el(
      'div',
      { className: 'decide' },
      el('label', { for: reasonId, text: 'Reason (optional)' }),
      reasonInput,
      el('div', { className: 'buttons' }, approve, deny),
    ),
  );

  expiries.set(card, { iso: a.expiresAt, node: expires });
  return card;
}

function renderList(approvals) {
  const pending = approvals.filter((a) => a && typeof a.id === 'string' && !decided.has(a.id));
  const ids = new Set(pending.map((a) => a.id));
  for (const [id, card] of cards) {
    if (ids.has(id)) continue;
    card.remove();
    cards.delete(id);
  }
  for (const a of pending) {
    const existing = cards.get(a.id);
    if (existing) {
      const expiry = expiries.get(existing);
      expiry.node.textContent = ` (${relative(expiry.iso)})`;
      continue;
    }
    const card = renderCard(a);
    cards.set(a.id, card);
    ui.cards.append(card);
  }
  ui.count.textContent = `(${cards.size})`;
  ui.empty.hidden = cards.size > 0;
  ui.updated.textContent = `Last updated ${new Date().toLocaleTimeString()}.`;
}

function logEntry(text, kind) {
  const item = el('li', { className: kind, 'data-testid': 'decision-entry', text });
  ui.log.prepend(item);
  return item;
}

// --- behaviour -----------------------------------------------------------------------------

async function refresh() {
  if (!session.token || refreshing) return;
  refreshing = true;
  const mine = session.generation;
  try {
    const r = await api('GET', '/v1/approvals?status=pending');
    if (mine !== session.generation) return;
    if (r.ok) {
      renderList(Array.isArray(r.data?.approvals) ? r.data.approvals : []);
      if (ui.status.dataset.kind === 'stale') clearStatus();
    } else if (endsSession(r)) {
      refused(r);
    } else {
      showStatus(`Could not load approvals: ${r.error.message}. Retrying.`, 'stale');
    }
  } finally {
    refreshing = false;
  }
}

async function decide(a, decision, card) {
  const mine = session.generation;
  const buttons = card.querySelectorAll('button');
  const input = card.querySelector('input');
  for (const b of buttons) b.disabled = true;
  input.disabled = true;
  card.setAttribute('aria-busy', 'true');

  const reason = input.value.trim();
  const r = await api(
    'POST',
    `/v1/approvals/${encodeURIComponent(a.id)}`,
    reason ? { decision, reason } : { decision },
  );
  if (mine !== session.generation) return;
  const verb = decision === 'approve' ? 'approve' : 'deny';
  if (r.ok) {
    decided.add(a.id);
    removeCard(a.id);
    const text =
      decision === 'approve' ? `Approved ${a.tool} (${a.id}).` : `Denied ${a.tool} (${a.id}). It will not run.`;
    showStatus(text, 'success');
    const entry = logEntry(
      decision === 'approve' ? `${text} Action ${a.actionId}: queued…` : text,
      decision === 'approve' ? 'ok' : 'denied',
    );
    if (decision === 'approve') follow(a, entry, mine);
    return;
  }
  if (endsSession(r)) return refused(r);
  showStatus(`Could not ${verb} ${a.tool} (${a.id}): ${r.error.message}`, 'error');
  if (r.status === 404 || r.status === 409) {
    // Decided elsewhere, expired, or gone: it can no longer be decided here.
    decided.add(a.id);
    removeCard(a.id);
    logEntry(`Could not ${verb} ${a.tool} (${a.id}): ${r.error.message}`, 'failed');
    return;
  }
  for (const b of buttons) b.disabled = false;
  input.disabled = false;
  card.removeAttribute('aria-busy');
}

/** After an approval, watches the action until it ends, so the approver sees what happened. */
async function follow(a, entry, mine) {
  const until = Date.now() + FOLLOW_MS;
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (mine !== session.generation) return;
    const r = await api('GET', `/v1/actions/${encodeURIComponent(a.actionId)}`);
    if (mine !== session.generation) return;
    if (!r.ok) {
      if (endsSession(r)) return refused(r);
      continue;
    }
    const status = typeof r.data?.status === 'string' ? r.data.status : 'unknown';
    entry.textContent = `Approved ${a.tool} (${a.id}). Action ${a.actionId}: ${status}.`;
    if (FINAL.includes(status)) {
      entry.className = status === 'succeeded' ? 'ok' : 'failed';
      return;
    }
  }
}

function removeCard(id) {
  const card = cards.get(id);
  if (card) card.remove();
  cards.delete(id);
  ui.count.textContent = `(${cards.size})`;
  ui.empty.hidden = cards.size > 0;
}

function showList() {
  ui.signInView.hidden = true;
  ui.listView.hidden = false;
  ui.session.hidden = false;
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

function showSignIn() {
  ui.listView.hidden = true;
  ui.session.hidden = true;
  ui.signInView.hidden = false;
  ui.token.value = '';
  ui.token.focus();
}

function signOut(announce = true) {
  session.end();
  clearInterval(timer);
  timer = null;
  for (const card of cards.values()) card.remove();
  cards.clear();
  decided.clear();
  ui.log.replaceChildren();
  if (announce) showStatus('Signed out.', 'info');
  showSignIn();
}

async function signIn(candidate) {
  session.start(candidate);
  const mine = session.generation;
  showStatus('Checking the token…', 'info');
  const r = await api('GET', '/v1/approvals?status=pending');
  if (mine !== session.generation) return;
  if (!r.ok) {
    session.end();
    if (endsSession(r)) {
      const why =
        r.status === 401
          ? 'The token was not accepted'
          : 'This token may not decide on approvals (it is not an approver token)';
      showStatus(`${why}: ${r.error.message}`, 'error');
    } else {
      showStatus(`Could not sign in: ${r.error.message}`, 'error');
    }
    showSignIn();
    return;
  }
  session.keep();
  clearStatus();
  showList();
  renderList(Array.isArray(r.data?.approvals) ? r.data.approvals : []);
}

ui.signInForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const candidate = ui.token.value.trim();
  if (!candidate) {
    showStatus('Enter your approver token.', 'error');
    ui.token.focus();
    return;
  }
  ui.token.value = '';
  signIn(candidate);
});
ui.signOut.addEventListener('click', () => signOut(true));
ui.refresh.addEventListener('click', () => refresh());

if (session.token) signIn(session.token);
else showSignIn();
