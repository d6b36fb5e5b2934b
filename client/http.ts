// One request to the API with a deadline, the bearer token and the retry rule: a retry only where
// it cannot do the work twice. GETs are retried on a lost answer, 429 and 502/503/504. A POST with
// an Idempotency-Key is retried likewise (the service answers a retry with the first request's
// record). Any other POST only when the service said nothing was done: 429 (refused before
// admission) and 503 dependency_unavailable/engine_unavailable/audit_unavailable.
import { apiError, SandgateApiError, SandgateNetworkError } from './errors.ts';

export interface HttpOptions {
  baseUrl: string;
  token: string;
  /** Deadline of one attempt (default 30 s; a waiting run gets its own timeout on top). */
  timeoutMs?: number;
  /** Attempts after the first (default 2). */
  retries?: number;
  fetch?: typeof fetch;
}

export interface Call {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: unknown;
  idempotencyKey?: string;
  /** Deadline of this call's attempts instead of the default. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const NOTHING_DONE = new Set(['rate_limited', 'dependency_unavailable', 'engine_unavailable', 'audit_unavailable']);
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

export interface Http {
  json<T>(call: Call): Promise<{ status: number; body: T }>;
  /** An open response (an event stream); its status is checked, its body left to the caller. */
  open(call: Call & { headers?: Record<string, string> }): Promise<Response>;
}

export function createHttp(opts: HttpOptions): Http {
  const doFetch = opts.fetch ?? fetch;
  const base = opts.baseUrl.replace(/\/+$/, '');
  const retries = opts.retries ?? 2;
  const timeoutMs = opts.timeoutMs ?? 30_000;

  const mayRetry = (call: Call, error: unknown): boolean => {
    const safe = call.method === 'GET' || call.idempotencyKey !== undefined;
    if (error instanceof SandgateNetworkError) return safe;
    if (!(error instanceof SandgateApiError)) return false;
    if (NOTHING_DONE.has(error.code)) return true;
    return safe && [502, 503, 504].includes(error.status);
  };

  async function attempt(call: Call & { headers?: Record<string, string> }): Promise<Response> {
    const what = `${call.method} ${call.path}`;
    const deadline = AbortSignal.timeout(call.timeoutMs ?? timeoutMs);
    const signal = call.signal ? AbortSignal.any([call.signal, deadline]) : deadline;
    let res: Response;
    try {
      res = await doFetch(`${base}${call.path}`, {
        method: call.method,
        headers: {
          authorization: `Bearer ${opts.token}`,
          accept: 'application/json',
          ...(call.body !== undefined && { 'content-type': 'application/json' }),
          ...(call.idempotencyKey && { 'idempotency-key': call.idempotencyKey }),
          ...call.headers,
        },
        ...(call.body !== undefined && { body: JSON.stringify(call.body) }),
        signal,
      });
    } catch (e) {
      if (call.signal?.aborted) throw call.signal.reason;
      throw new SandgateNetworkError(what, e);
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    let parsed: { error?: { code?: string; message?: string } } = {};
    try {
      parsed = JSON.parse(text);
    } catch {}
    const retryAfter = Number(res.headers.get('retry-after'));
    throw apiError(
      parsed.error?.code ?? `http_${res.status}`,
      parsed.error?.message ?? (text.slice(0, 200) || res.statusText),
      {
        status: res.status,
        retryAfterS: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
        request: what,
      },
    );
  }

  async function withRetries(call: Call & { headers?: Record<string, string> }): Promise<Response> {
    for (let n = 0; ; n++) {
      try {
        return await attempt(call);
      } catch (e) {
        if (n >= retries || !mayRetry(call, e)) throw e;
        const hinted = e instanceof SandgateApiError && e.retryAfterS !== undefined ? e.retryAfterS * 1000 : 0;
        await sleep(Math.min(10_000, Math.max(hinted, 200 * 2 ** n)), call.signal);
      }
    }
  }

  return {
    async json<T>(call: Call) {
      const res = await withRetries(call);
      return { status: res.status, body: (await res.json()) as T };
    },
    open: (call) => withRetries({ ...call, headers: { accept: 'text/event-stream', ...call.headers } }),
  };
}
