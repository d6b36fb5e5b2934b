// One MCP server (the SDK's low-level Server) for one authenticated HTTP request. Stateless: the
// agent, its grants and its budget are in the token and in Redis, checked on every request, so an
// MCP "session" holds nothing Sandgate needs and any API process serves any request. What the
// session would have held for resumption, the messages of a response stream, is in Redis
// (state/mcp-events.ts).
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type ListToolsResult,
} from '@modelcontextprotocol/sdk/types.js';
import type { FastifyBaseLogger } from 'fastify';
import { type CallContext, callTool, listTools, type McpCaller, type McpToolDeps } from './mcp-tools.ts';

/** Sends a run's output to the MCP client while it runs (progress and log notifications). */
export type RunFollower = (
  executionId: string,
  caller: McpCaller,
  notify: (n: { method: string; params: Record<string, unknown> }) => Promise<void>,
  progressToken: string | number | undefined,
  signal: AbortSignal,
) => Promise<void>;

export interface McpServerDeps extends McpToolDeps {
  logger: FastifyBaseLogger;
  followRun?: RunFollower;
}

export const SERVER_INFO = { name: 'sandgate', version: '0.1.0' };

const INSTRUCTIONS =
  'Sandgate runs your code in network-less sandboxes and makes your tool calls under your grants, budget and audit. ' +
  'run_code runs a program (see its profiles); other tools are the tools you are granted. An irreversible tool waits ' +
  'for a human: its answer names an action id to check with get_action. A refusal is a tool error whose text starts ' +
  'with Sandgate\'s error code. Name a task with _meta["sandgate/taskId"] (or pass taskId to run_code).';

export function buildMcpServer(deps: McpServerDeps, caller: McpCaller): Server {
  const server = new Server(SERVER_INFO, {
    capabilities: { tools: { listChanged: false }, logging: {} },
    instructions: INSTRUCTIONS,
  });
  server.setRequestHandler(
    ListToolsRequestSchema,
    async () => ({ tools: await listTools(deps, caller) }) as ListToolsResult,
  );
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name, arguments: args = {}, _meta: meta = {} } = request.params;
    const progressToken = meta.progressToken;
    const follow = deps.followRun;
    const ctx: CallContext = {
      meta: meta as Record<string, unknown>,
      signal: extra.signal,
      ...(follow && {
        followRun: (id: string, signal: AbortSignal) =>
          follow(id, caller, (n) => extra.sendNotification(n as never), progressToken, signal),
      }),
    };
    try {
      return (await callTool(deps, caller, name, args, ctx)) as CallToolResult;
    } catch (e) {
      deps.logger.error({ err: (e as Error).message, tool: name }, 'MCP tool call failed');
      return {
        content: [{ type: 'text', text: 'internal_error: the call failed inside Sandgate; see its log' }],
        structuredContent: { error: { code: 'internal_error', message: 'the call failed inside Sandgate' } },
        isError: true,
      };
    }
  });
  return server;
}
