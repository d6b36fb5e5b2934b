// A client of a Sandgate listening on loopback (a spawned process): admin calls, agents and
// their tokens, executions. Used by the process tests and the fault suite.

export interface Answer {
  status: number;
  body: Record<string, unknown> & { id?: string; status?: string; error?: { code: string; message: string } };
  ms: number;
}

export interface ServiceClient {
  base: string;
  /** Any request; the body is JSON. Never throws on a status, only when there is no answer. */
  call(method: string, path: string, token: string, body?: unknown, timeoutMs?: number): Promise<Answer>;
  /** Creates an agent and returns a token of it (ttl one hour). */
  agent(grants: { profiles: string[] }, limits?: Record<string, number>): Promise<{ id: string; token: string }>;
  /** POST /v1/executions (with `?wait=true` when `wait`). */
  execute(token: string, body: Record<string, unknown>, wait?: boolean, timeoutMs?: number): Promise<Answer>;
}

export function serviceClient(port: number, adminToken: string): ServiceClient {
  const base = `http://127.0.0.1:${port}`;
  const call = async (
    method: string,
    path: string,
    token: string,
    body?: unknown,
    timeoutMs = 60_000,
  ): Promise<Answer> => {
    const t = performance.now();
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: Answer['body'] = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { raw: text };
    }
    return { status: res.status, body: parsed, ms: performance.now() - t };
  };
  return {
    base,
    call,
    async agent(grants, limits) {
      const created = await call('POST', '/v1/agents', adminToken, {
        name: 'fault-agent',
        grants,
        ...(limits && { limits }),
      });
      if (created.status !== 201) throw new Error(`create agent: ${created.status} ${JSON.stringify(created.body)}`);
      const id = created.body.id as string;
      const minted = await call('POST', `/v1/agents/${id}/tokens`, adminToken, { ttlSeconds: 3600 });
      if (minted.status !== 201) throw new Error(`mint token: ${minted.status} ${JSON.stringify(minted.body)}`);
      return { id, token: minted.body.token as string };
    },
    execute: (token, body, wait = false, timeoutMs = 60_000) =>
      call('POST', `/v1/executions${wait ? '?wait=true' : ''}`, token, body, timeoutMs),
  };
}

/** The value of one Prometheus sample (`name{labels}`) in a /metrics text, 0 when absent. */
export function metricValue(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}
