// The operator console: one page, one view at a time (#/agents, #/agents/<id>, #/tasks,
// #/tasks/<id>, #/alerts, #/records/<id>, #/evidence/<agent id>), refreshed from the API every
// few seconds so a new alert or a paused task shows up without a reload. The signed-in role
// decides which pages and buttons exist; the API decides again on every call (a button missing
// here is convenience, the 403 there is the rule). Plain browser JavaScript, no build step.
import { api as rawApi, session } from './lib/api.js';
import { el } from './lib/dom.js';
import * as agentView from './views/agent.js';
import * as agentsView from './views/agents.js';
import * as alertsView from './views/alerts.js';
import * as evidenceView from './views/evidence.js';
import * as recordView from './views/record.js';
import * as taskView from './views/task.js';
import * as tasksView from './views/tasks.js';

const POLL_MS = 3000;

/** What each human role may see and do here (the API enforces the same). */
const ROLES = {
  admin: {
    pages: ['agents', 'agent', 'tasks', 'task', 'alerts', 'record', 'evidence'],
    act: true,
    revoke: true,
    evidence: true,
  },
  operator: {
    pages: ['agents', 'agent', 'tasks', 'task', 'alerts', 'record'],
    act: true,
    revoke: false,
    evidence: false,
  },
  auditor: {
    pages: ['agents', 'agent', 'tasks', 'task', 'alerts', 'record', 'evidence'],
    act: false,
    revoke: false,
    evidence: true,
  },
  approver: { pages: ['approver'], act: false, revoke: false, evidence: false },
};

const VIEWS = {
  agents: agentsView,
  agent: agentView,
  tasks: tasksView,
  task: taskView,
  alerts: alertsView,
  record: recordView,
  evidence: evidenceView,
};

const $ = (id) => document.getElementById(id);
const ui = {
  nav: $('nav'),
  session: $('session'),
  who: $('who'),
  signOut: $('sign-out'),
  status: $('status'),
  signInView: $('sign-in-view'),
  signInForm: $('sign-in-form'),
  token: $('token'),
  view: $('view'),
  alertCount: $('alert-count'),
};

let me = null;
let current = null; // { name, instance, gen }
let viewGen = 0;
let timer = null;
let ticking = false;

// --- status line ----------------------------------------------------------------------------

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

// --- the API, with the session's rules ----------------------------------------------------

/** 401 ends the session wherever it comes from; everything else is the view's to show. */
async function api(method, path, body) {
  const r = await rawApi(method, path, body);
  if (!r.stale && r.status === 401) {
    signOut(false);
    showStatus(`The token was not accepted: ${r.error.message}. Sign in again.`, 'error');
  }
  return r;
}

// --- routing ------------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash || '#/agents';
  const [path, qs] = raw.slice(1).split('?', 2);
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(qs ?? '');
  const [first, id] = parts;
  if (first === 'agents') return { name: id ? 'agent' : 'agents', id, query };
  if (first === 'tasks') return { name: id ? 'task' : 'tasks', id, query };
  if (first === 'alerts') return { name: 'alerts', id, query };
  if (first === 'records' && id) return { name: 'record', id, query };
  if (first === 'evidence' && id) return { name: 'evidence', id, query };
  return { name: 'unknown', id, query };
}

function markNav(name) {
  for (const a of ui.nav.querySelectorAll('a[data-page]')) {
    const page = a.dataset.page;
    const active = name === page || name === page.replace(/s$/, '');
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function unmount() {
  if (current?.instance?.unmount) current.instance.unmount();
  current = null;
  ui.view.replaceChildren();
}

function route() {
  if (!me) return;
  unmount();
  const gen = ++viewGen;
  const rights = ROLES[me.role];
  let { name, id, query } = parseHash();
  if (me.role === 'approver') name = 'approver';
  markNav(name);
  const root = el('section', { className: 'view', 'data-testid': `page-${name}` });
  ui.view.replaceChildren(root);
  if (name === 'approver') {
    root.append(
      el('h2', { text: 'Approvals' }),
      el('p', { text: 'This token is an approver: it decides on actions that wait for a human.' }),
      el(
        'p',
        {},
        el('a', { href: '/console/approvals', 'data-testid': 'approvals-link', text: 'Open the approvals page' }),
      ),
    );
    return;
  }
  if (!rights.pages.includes(name)) {
    root.append(
      el('h2', { text: name === 'unknown' ? 'No such page' : 'Not for this role' }),
      el('p', {
        'data-testid': 'not-allowed',
        text: name === 'unknown' ? 'Pick a page above.' : `The ${me.role} role cannot open this page.`,
      }),
    );
    return;
  }
  const ctx = {
    me,
    can: rights,
    id,
    query,
    api,
    status: showStatus,
    clearStatus,
    alive: () => gen === viewGen && me !== null,
    refreshNow: () => tick(),
  };
  const instance = VIEWS[name].mount(root, ctx);
  current = { name, instance, gen };
  tick();
}

// --- live updates -------------------------------------------------------------------------

async function updateAlertCount() {
  const r = await api('GET', '/v1/alerts?status=open&limit=500');
  if (r.stale || !r.ok) return;
  const n = Array.isArray(r.data?.alerts) ? r.data.alerts.length : 0;
  ui.alertCount.textContent = n ? String(n) : '';
  ui.alertCount.className = n ? 'count hot' : 'count';
}

async function tick() {
  if (!me || ticking) return;
  ticking = true;
  try {
    const view = current;
    if (view?.instance?.refresh) await view.instance.refresh();
    if (me && me.role !== 'approver') await updateAlertCount();
  } finally {
    ticking = false;
  }
}

// --- session ------------------------------------------------------------------------------

function showSignIn() {
  ui.nav.hidden = true;
  ui.session.hidden = true;
  ui.view.hidden = true;
  ui.signInView.hidden = false;
  ui.token.value = '';
  ui.token.focus();
}

function signOut(announce = true) {
  clearInterval(timer);
  timer = null;
  me = null;
  session.end();
  unmount();
  if (announce) showStatus('Signed out.', 'info');
  showSignIn();
}

function showNav() {
  for (const a of ui.nav.querySelectorAll('a[data-page]')) {
    const page = a.dataset.page;
    a.hidden = me.role === 'approver' ? page !== 'approvals' : page === 'approvals';
  }
  ui.nav.hidden = false;
  ui.session.hidden = false;
  ui.who.textContent = `${me.name} · ${me.role}`;
}

async function signIn(candidate) {
  session.start(candidate);
  showStatus('Checking the token…', 'info');
  const r = await rawApi('GET', '/v1/me');
  if (r.stale) return;
  if (!r.ok || !ROLES[r.data?.role]) {
    session.end();
    const why =
      r.status === 401
        ? `The token was not accepted: ${r.error.message}`
        : r.status === 403
          ? 'This is not a console token (an agent token, or a role without a console): nothing here is for it'
          : `Could not sign in: ${r.error?.message ?? 'unexpected answer'}`;
    showStatus(why, 'error');
    showSignIn();
    return;
  }
  session.keep();
  me = r.data;
  clearStatus();
  ui.signInView.hidden = true;
  ui.view.hidden = false;
  showNav();
  clearInterval(timer);
  timer = setInterval(tick, POLL_MS);
  route();
}

ui.signInForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const candidate = ui.token.value.trim();
  if (!candidate) {
    showStatus('Enter your token.', 'error');
    ui.token.focus();
    return;
  }
  ui.token.value = '';
  signIn(candidate);
});
ui.signOut.addEventListener('click', () => signOut(true));
window.addEventListener('hashchange', () => {
  clearStatus();
  route();
});

if (session.token) signIn(session.token);
else showSignIn();
