// The console's one door to the API: every call carries the signed-in human's bearer token, kept
// in this tab's sessionStorage only (shared with the approvals page), never in a cookie or
// localStorage. Never throws: {ok, status, data} or {ok: false, status, error}.

export const TOKEN_KEY = 'sandgate.token';

let token = sessionStorage.getItem(TOKEN_KEY);
/** Bumped on every sign-in and sign-out, so answers meant for an old session are dropped. */
let generation = 0;

export const session = {
  get token() {
    return token;
  },
  get generation() {
    return generation;
  },
  start(candidate) {
    generation++;
    token = candidate;
  },
  keep() {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  end() {
    generation++;
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

export async function api(method, path, body) {
  const mine = generation;
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    return {
      ok: false,
      status: 0,
      stale: mine !== generation,
      error: { code: 'network', message: 'the server could not be reached' },
    };
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  const stale = mine !== generation;
  if (res.ok) return { ok: true, status: res.status, data, stale };
  const error =
    typeof data?.error?.message === 'string'
      ? { code: String(data.error.code), message: data.error.message }
      : { code: `http_${res.status}`, message: `the server answered HTTP ${res.status}` };
  return { ok: false, status: res.status, error, stale };
}

/** A query string from an object, skipping empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
