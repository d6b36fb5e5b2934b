// The `http` handler: the operator's own endpoint for the real system (a mail gateway, a payment
// API). Its URL and credentials come from the operator's configuration and environment, so the
// agent and the sandbox never see them; the action id goes along as an idempotency key.
import { request } from 'undici';
import { resultError } from '../../../contract/errors.ts';
import type { Tool } from '../../../guard/tools/tool-registry.ts';
import type { HandlerResult } from './handler.ts';

export async function runHttpCall(
  tool: Tool,
  actionId: string,
  args: Record<string, unknown>,
  env: Record<string, string | undefined>,
): Promise<HandlerResult> {
  const handler = tool.definition.handler;
  if (handler.type !== 'http' || !tool.url)
    return { ok: false, error: resultError('tool_unavailable', 'the tool has no endpoint configured'), egress: [] };
  const url = new URL(tool.url);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': actionId };
  for (const [name, { env: variable, prefix }] of Object.entries(handler.headers)) {
    const secret = env[variable];
    if (!secret)
      return {
        ok: false,
        error: resultError('tool_unavailable', `the tool's credential ${variable} is not set`),
        egress: [],
      };
    headers[name] = `${prefix}${secret}`;
  }
  const egress = [
    {
      url: url.origin + url.pathname,
      host: url.hostname,
      port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
      allowed: true,
      reason: 'operator endpoint of the tool',
    },
  ];
  try {
    // undici follows no redirect unless asked: the operator endpoint answers itself or fails.
    const res = await request(url, {
      method: handler.method,
      headers,
      body: JSON.stringify({ tool: tool.definition.name, actionId, args }),
      signal: AbortSignal.timeout(handler.timeoutMs),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    for await (const chunk of res.body) {
      size += chunk.length;
      if (size > handler.maxResponseBytes) {
        truncated = true;
        res.body.destroy();
        break;
      }
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    if (res.statusCode >= 400) {
      return {
        ok: false,
        error: resultError('tool_http_error', res.statusCode),
        result: { status: res.statusCode, body },
        egress,
      };
    }
    return { ok: true, result: { status: res.statusCode, body, truncated }, egress };
  } catch (e) {
    const timeout = (e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError';
    return {
      ok: false,
      error: timeout
        ? resultError('tool_timeout', handler.timeoutMs)
        : resultError('tool_unreachable', (e as Error).message),
      egress,
    };
  }
}
