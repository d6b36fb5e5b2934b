// The built-in http_fetch tool: GET/POST to a destination the agent was granted, through the
// egress layer that decides on the IP actually connected to. The response is untrusted data.
import { resultError } from '../../../contract/errors.ts';
import type { ToolDefinition } from '../../../contract/tool.ts';
import { type Lookup, safeFetch } from '../egress/safe-fetch.ts';
import type { HandlerResult } from './handler.ts';

export interface HttpFetchArgs {
  url: string;
  method?: 'GET' | 'POST';
  body?: string;
  contentType?: string;
}

export async function runHttpFetch(
  definition: ToolDefinition,
  args: HttpFetchArgs,
  destinations: readonly string[],
  lookup?: Lookup,
): Promise<HandlerResult> {
  if (definition.handler.type !== 'http_fetch') throw new Error(`tool ${definition.name} is not an http_fetch tool`);
  const { timeoutMs, maxResponseBytes } = definition.handler;
  const fetched = await safeFetch(args.url, {
    method: args.method ?? 'GET',
    ...(args.body !== undefined && { body: args.body }),
    ...(args.contentType && { headers: { 'content-type': args.contentType } }),
    grants: destinations,
    maxResponseBytes,
    timeoutMs,
    ...(lookup && { lookup }),
  });
  const egress = fetched.decisions.map((d) => ({ ...d }));
  if (!fetched.ok)
    return { ok: false, error: fetched.error ?? resultError('egress_failed', 'the fetch failed'), egress };
  return {
    ok: true,
    result: {
      status: fetched.status,
      headers: fetched.headers,
      body: fetched.body,
      truncated: fetched.truncated,
      untrusted: true,
    },
    egress,
    untrustedSource: `http_fetch ${args.url}`,
  };
}
