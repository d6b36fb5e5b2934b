// The MCP endpoint (streamable HTTP) and its protected-resource metadata (RFC 9728).
//
// - Every request authenticates its bearer token as an agent token for this resource (audience =
//   the MCP resource URL, expiry required, the agent read from Redis each time: a revocation
//   refuses the very next request, in the middle of a session too). No token or a bad one: 401
//   with `WWW-Authenticate: Bearer … resource_metadata="…/.well-known/oauth-protected-resource"`.
// - POST: a fresh SDK server and transport in stateless mode for this request (see
//   mcp-server.ts); each message it sends on the response stream is stored in Redis first
//   (state/mcp-events.ts). The server lives until every request it was given has its response
//   sent, even when the client went away, so the response can still be stored and resumed.
// - GET with Last-Event-ID: resumes a broken response stream on any API process: what was stored
//   after that event, then what is stored next, until the response itself (bounded).
// - GET without it, and DELETE: 405, there is no session to listen on or to end.
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody, isSandgateError } from '../../contract/errors.ts';
import type { TokenService } from '../../guard/identity/tokens.ts';
import type { AgentStore } from '../../state/agents.ts';
import { MCP_EVENTS_MAX, type McpEventLog } from '../../state/mcp-events.ts';
import { authenticateAgent, credential } from '../auth.ts';
import { buildMcpServer, type McpServerDeps } from './mcp-server.ts';
import type { McpCaller } from './mcp-tools.ts';
import { MCP_PATH, type McpResource, METADATA_PATH } from './resource.ts';

export interface McpRouteDeps extends McpServerDeps {
  tokens: TokenService;
  agents: AgentStore;
  mcpEvents: McpEventLog;
  resource: McpResource;
  /** The longest a response may take (the slowest run plus grace): the bound of a server's life and of a resume. */
  longestCallMs: number;
}

const isRequest = (m: unknown): boolean =>
  typeof m === 'object' && m !== null && 'method' in m && 'id' in m && (m as { id: unknown }).id !== undefined;
const isResponse = (m: unknown): boolean =>
  typeof m === 'object' && m !== null && 'id' in m && ('result' in m || 'error' in m) && !('method' in m);

const RESUME_POLL_MS = 200;
const KEEP_ALIVE_MS = 15_000;

export const mcpRoutes: FastifyPluginAsync<McpRouteDeps> = async (app, deps) => {
  const { resource, mcpEvents } = deps;

  const metadata = {
    schema: { summary: 'OAuth protected-resource metadata of the MCP endpoint (RFC 9728)', tags: ['mcp'] },
  };
  app.get(METADATA_PATH, metadata, async () => resource.metadata());
  // RFC 9728 section 3.1: the metadata of https://host/mcp may also be asked for at …/oauth-protected-resource/mcp.
  app.get(`${METADATA_PATH}${MCP_PATH}`, metadata, async () => resource.metadata());

  /** The caller, or undefined when a 401 (or 403) has been sent. */
  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<McpCaller | undefined> {
    // DNS rebinding: a browser page of another origin never gets to speak to this endpoint.
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== new URL(resource.base()).origin) {
      await reply.code(403).send(errorBody('forbidden', `requests from origin ${origin} are not accepted here`));
      return undefined;
    }
    const token = credential(request, false);
    if (!token) {
      await reply
        .code(401)
        .header('www-authenticate', resource.challenge())
        .send(
          errorBody(
            'unauthorized',
            `send Authorization: Bearer <an agent token minted for resource ${resource.url()}>`,
          ),
        );
      return undefined;
    }
    try {
      return await authenticateAgent(deps, token, resource.url());
    } catch (e) {
      if (!isSandgateError(e) || e.status !== 401) throw e;
      await reply
        .code(401)
        .header('www-authenticate', resource.challenge({ code: 'invalid_token', description: e.message }))
        .send(errorBody(e.code, e.message));
      return undefined;
    }
  }

  const eventStore = (agentId: string) => ({
    storeEvent: (streamId: string, message: JSONRPCMessage) => mcpEvents.append(agentId, streamId, message),
    getStreamIdForEventId: async (eventId: string) => mcpEvents.streamOf(eventId),
    async replayEventsAfter(
      lastEventId: string,
      { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
    ) {
      for (const e of await mcpEvents.after(agentId, lastEventId, MCP_EVENTS_MAX))
        if (Object.keys(e.message).length) await send(e.eventId, e.message as JSONRPCMessage);
      return mcpEvents.streamOf(lastEventId) ?? '';
    },
  });

  app.post(
    MCP_PATH,
    { schema: { summary: 'MCP over streamable HTTP (JSON-RPC)', tags: ['mcp'] } },
    async (request, reply) => {
      const caller = await authenticate(request, reply);
      if (!caller) return reply;
      const server = buildMcpServer(deps, caller);
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        eventStore: eventStore(caller.agent.id),
      });
      transport.onerror = (e) => request.log.debug({ err: e.message }, 'MCP transport');
      await server.connect(transport);

      // The server's life: until every request given to it has its response sent and the HTTP
      // response is over (closing earlier would abort a call whose client merely went away).
      let pending = 0;
      let answered = false;
      let closed = false;
      let deadline: NodeJS.Timeout | undefined;
      const close = () => {
        if (closed) return;
        closed = true;
        clearTimeout(deadline);
        transport.close().catch(() => {});
        server.close().catch(() => {});
      };
      deadline = setTimeout(close, deps.longestCallMs);
      deadline.unref();
      const deliver = transport.onmessage!;
      transport.onmessage = (message, extra) => {
        if (isRequest(message)) pending++;
        deliver(message, extra);
      };
      const send = transport.send.bind(transport);
      transport.send = async (message, options) => {
        try {
          await send(message, options);
        } finally {
          if (isResponse(message) && --pending <= 0 && answered) close();
        }
      };
      reply.raw.once('close', () => {
        answered = true;
        if (pending <= 0) close();
      });
      reply.hijack();
      try {
        await transport.handleRequest(request.raw, reply.raw, request.body);
      } catch (e) {
        request.log.error({ err: (e as Error).message }, 'MCP request failed');
        if (!reply.raw.headersSent) reply.raw.writeHead(500, { 'content-type': 'application/json' });
        reply.raw.end(
          JSON.stringify(errorBody('internal_error', 'the MCP request failed inside Sandgate; see its log')),
        );
        close();
      }
    },
  );

  app.get(
    MCP_PATH,
    { schema: { summary: 'Resume an MCP response stream (Last-Event-ID)', tags: ['mcp'] } },
    async (request, reply) => {
      const caller = await authenticate(request, reply);
      if (!caller) return reply;
      const lastEventId = request.headers['last-event-id'];
      if (typeof lastEventId !== 'string' || !lastEventId) {
        return reply
          .code(405)
          .header('allow', 'POST')
          .send(
            errorBody(
              'method_not_allowed',
              'this endpoint keeps no sessions, so there is no stream to listen on; GET only resumes a response stream with Last-Event-ID',
            ),
          );
      }
      const agentId = caller.agent.id;
      const streamId = mcpEvents.streamOf(lastEventId);
      if (!streamId || !(await mcpEvents.exists(agentId, streamId))) {
        return reply
          .code(404)
          .send(errorBody('not_found', `no MCP stream holds event ${lastEventId} (unknown, expired, or not yours)`));
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
      });
      let gone = false;
      res.once('close', () => {
        gone = true;
      });
      const until = Date.now() + deps.longestCallMs;
      let cursor = lastEventId;
      let lastWrite = Date.now();
      try {
        for (let done = false; !done && !gone && Date.now() < until; ) {
          const events = await mcpEvents.after(agentId, cursor, 500);
          for (const e of events) {
            cursor = e.eventId;
            if (!Object.keys(e.message).length) continue; // the SDK's priming event
            res.write(`event: message\nid: ${e.eventId}\ndata: ${JSON.stringify(e.message)}\n\n`);
            lastWrite = Date.now();
            if (isResponse(e.message)) done = true;
          }
          if (done || events.length) continue;
          if (Date.now() - lastWrite > KEEP_ALIVE_MS) {
            res.write(': keep-alive\n\n');
            lastWrite = Date.now();
          }
          await new Promise((r) => setTimeout(r, RESUME_POLL_MS));
        }
      } catch (e) {
        request.log.warn({ err: (e as Error).message }, 'MCP stream resume failed');
      } finally {
        res.end();
      }
    },
  );

  app.delete(
    MCP_PATH,
    { schema: { summary: 'No MCP sessions to end here (405)', tags: ['mcp'] } },
    async (request, reply) => {
      const caller = await authenticate(request, reply);
      if (!caller) return reply;
      return reply
        .code(405)
        .header('allow', 'POST')
        .send(errorBody('method_not_allowed', 'this endpoint keeps no sessions, so there is none to end'));
    },
  );
};
