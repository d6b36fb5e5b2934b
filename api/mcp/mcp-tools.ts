// What an agent sees and calls over MCP: `run_code` (its granted profiles, their ceilings in the
// description and schema), one tool per Sandgate tool it may call (the tool's JSON Schema as input,
// irreversibility in its annotations), `get_execution` and `get_action`. Every call goes through the
// same lifecycles as the REST routes (guard/lifecycle): audit, budget, detectors, taint, approval;
// nothing here decides anything. A refusal comes back as a tool error carrying Sandgate's code.
import { z } from 'zod';
import {
  type Action,
  ActionId,
  ActionRequest,
  type ActionStatus,
  FINAL_ACTION_STATUSES,
} from '../../contract/action.ts';
import type { Agent } from '../../contract/agent.ts';
import { isSandgateError, SandgateError } from '../../contract/errors.ts';
import { type Execution, ExecutionId, ExecutionRequest, isFinal } from '../../contract/execution.ts';
import type { Principal } from '../../contract/principal.ts';
import type { Profile } from '../../contract/profile.ts';
import { ownedOrNotFound, taskFor, taskIdFor } from '../../guard/lifecycle/access.ts';
import type { ActionLifecycle } from '../../guard/lifecycle/action-lifecycle.ts';
import type { ExecutionLifecycle } from '../../guard/lifecycle/execution-lifecycle.ts';
import { mayCallTool, mayRunProfile } from '../../guard/policy/authorize.ts';
import type { PolicyDecisionPoint } from '../../guard/policy/decision-point.ts';
import type { ProfileSet } from '../../guard/profiles.ts';
import type { ToolSet } from '../../guard/tools/tool-registry.ts';
import type { ActionStore } from '../../state/actions.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import type { ExecutionStore } from '../../state/executions.ts';
import type { RecordEvents } from '../../state/record-events.ts';

export interface McpToolDeps {
  executions: ExecutionLifecycle;
  store: ExecutionStore;
  events: RecordEvents;
  toolCalls: ActionLifecycle;
  actions: ActionStore;
  actionEvents: RecordEvents<ActionStatus>;
  budgets: BudgetStore;
  policy: PolicyDecisionPoint;
  profiles: ProfileSet;
  tools: ToolSet;
  availableProfiles(): Promise<ReadonlySet<string>>;
  waitGraceMs: number;
}

export interface McpCaller {
  agent: Agent;
  principal: Extract<Principal, { role: 'agent' }>;
}

/** An MCP tool as tools/list shows it. */
export interface McpTool {
  name: string;
  title?: string;
  description: string;
  inputSchema: { type: 'object'; [k: string]: unknown };
  annotations?: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}

type Content =
  | { type: 'text'; text: string }
  | { type: 'image'; data: string; mimeType: string }
  | {
      type: 'resource';
      resource: { uri: string; mimeType: string; text: string } | { uri: string; mimeType: string; blob: string };
    };

export interface McpToolResult {
  content: Content[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
  [k: string]: unknown;
}

/** What a tool call may say about itself: output as it is made (see mcp-server.ts). */
export interface CallContext {
  /** `_meta` of the call: `sandgate/taskId`, `sandgate/reasoning`, `sandgate/untrusted` for Sandgate tools. */
  meta: Record<string, unknown>;
  signal: AbortSignal;
  /** Follows a run's output while it runs (set once the stream of a run can be read). */
  followRun?: (executionId: string, signal: AbortSignal) => Promise<void>;
}

export const BUILT_IN = ['run_code', 'get_execution', 'get_action'] as const;

/** How long after a run's end its output stream may still be sending what it has. */
const FOLLOW_GRACE_MS = 1000;
/** How long a Sandgate tool call is waited for before the answer is "still running, check get_action". */
const TOOL_WAIT_MS = 130_000;

const mib = (n: number) => (n >= 1048576 ? `${+(n / 1048576).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`);

function profileLine(p: Profile, available: boolean): string {
  const l = p.limits;
  const ceilings = `timeout ≤ ${l.timeoutMs} ms, memory ≤ ${l.memoryMb} MB, output ≤ ${mib(l.outputBytes)}, code ≤ ${mib(l.codeBytes)}`;
  const files =
    p.engine === 'docker'
      ? `; files in: ≤ ${p.files.maxCount} (${mib(p.files.maxBytes)}), files back from /work/out: ≤ ${p.files.outMaxCount} (${mib(p.files.outMaxBytes)})`
      : '; no stdin or files; the completion value is the result';
  return `- ${p.name} (${p.language}, ${p.engine}${available ? '' : ', not available now'}): ${p.description}. Limits: ${ceilings}${files}.`;
}

/** The input schema of run_code: ExecutionRequest's, its profile an enum of the granted ones. */
function runCodeSchema(profiles: readonly Profile[]): McpTool['inputSchema'] {
  const { $schema: _, ...schema } = z.toJSONSchema(z.strictObject(ExecutionRequest.shape), { io: 'input' }) as Record<
    string,
    unknown
  >;
  const properties = { ...(schema.properties as Record<string, Record<string, unknown>>) };
  properties.profile = {
    type: 'string',
    enum: profiles.map((p) => p.name),
    description: 'the sandbox profile to run in (see the tool description for each one)',
  };
  properties.code = { ...properties.code, description: 'the program; its output and result come back' };
  properties.timeoutMs = {
    ...properties.timeoutMs,
    maximum: Math.max(...profiles.map((p) => p.limits.timeoutMs)),
    description: "wall-clock limit; at most the profile's (see the description)",
  };
  properties.memoryMb = {
    ...properties.memoryMb,
    maximum: Math.max(...profiles.map((p) => p.limits.memoryMb)),
    description: "memory limit; at most the profile's",
  };
  return { ...schema, type: 'object', properties };
}

export async function listTools(deps: McpToolDeps, caller: McpCaller): Promise<McpTool[]> {
  const who = { agent: caller.agent, scopes: caller.principal.scopes };
  const profiles = [...deps.profiles.values()].filter((p) => mayRunProfile(deps.policy, who, p));
  const tools = [...deps.tools.values()].filter(
    (t) => mayCallTool(deps.policy, who, t.definition) && !(BUILT_IN as readonly string[]).includes(t.definition.name),
  );
  const listed: McpTool[] = [];
  if (profiles.length) {
    const available = await deps.availableProfiles();
    listed.push(
      {
        name: 'run_code',
        title: 'Run code in a sandbox',
        description: [
          'Runs a program in a fresh, network-less sandbox and returns its status, stdout, stderr, result and the files it',
          'left in /work/out (images as image content). Each run is authorized, budgeted and audited. Profiles:',
          ...profiles.map((p) => profileLine(p, available.has(p.name))),
        ].join('\n'),
        inputSchema: runCodeSchema(profiles),
        annotations: {
          title: 'Run code in a sandbox',
          readOnlyHint: false,
          destructiveHint: false,
          openWorldHint: false,
        },
      },
      {
        name: 'get_execution',
        title: 'Read a run',
        description: 'The record of one of your runs by its id (ex_…): status, output, files, usage, audit ids.',
        inputSchema: z.toJSONSchema(z.strictObject({ id: ExecutionId }), { io: 'input' }) as McpTool['inputSchema'],
        annotations: { readOnlyHint: true, openWorldHint: false },
      },
    );
  }
  if (tools.length) {
    listed.push({
      name: 'get_action',
      title: 'Read a tool call',
      description:
        'The record of one of your tool calls by its id (act_…): status (awaiting_approval until a human decides), result or error, the approval.',
      inputSchema: z.toJSONSchema(z.strictObject({ id: ActionId }), { io: 'input' }) as McpTool['inputSchema'],
      annotations: { readOnlyHint: true, openWorldHint: false },
    });
  }
  for (const { definition: d, available } of tools) {
    const { $schema: _, ...args } = d.args;
    listed.push({
      name: d.name,
      description: `${d.description}${d.irreversible ? ' Irreversible: each call waits for a human approver; the answer names the action to check with get_action.' : ''}${available ? '' : ' (not configured on this service now)'}`,
      inputSchema: { additionalProperties: false, ...args, type: 'object' },
      annotations: {
        title: d.name,
        readOnlyHint: false,
        destructiveHint: d.irreversible,
        idempotentHint: false,
        openWorldHint: true,
      },
      _meta: { 'sandgate/irreversible': d.irreversible, 'sandgate/cost': d.cost },
    });
  }
  return listed;
}

/** A refusal as MCP wants it: a tool result with isError, carrying Sandgate's code and message. */
export function refusal(code: string, message: string, status?: number): McpToolResult {
  return {
    content: [{ type: 'text', text: `${code}: ${message}` }],
    structuredContent: { error: { code, message, ...(status !== undefined && { status }) } },
    isError: true,
  };
}

function validationRefusal(error: z.ZodError): McpToolResult {
  const problems = error.issues.map((i) => `${i.path.join('.') || 'arguments'}: ${i.message}`).join('; ');
  return refusal('validation_failed', problems, 400);
}

export async function callTool(
  deps: McpToolDeps,
  caller: McpCaller,
  name: string,
  args: Record<string, unknown>,
  ctx: CallContext,
): Promise<McpToolResult> {
  try {
    switch (name) {
      case 'run_code':
        return await runCode(deps, caller, args, ctx);
      case 'get_execution': {
        const p = z.strictObject({ id: ExecutionId }).safeParse(args);
        if (!p.success) return validationRefusal(p.error);
        return executionResult(await loadExecution(deps, caller.principal, p.data.id));
      }
      case 'get_action': {
        const p = z.strictObject({ id: ActionId }).safeParse(args);
        if (!p.success) return validationRefusal(p.error);
        return actionResult(ownedOrNotFound(caller.principal, await deps.actions.get(p.data.id), 'action', p.data.id));
      }
      default:
        // Any other name is a Sandgate tool call: the lifecycle refuses an ungranted or unknown
        // one exactly as POST /v1/actions does (403 tool_not_granted, audited, watched).
        return await sandgateTool(deps, caller, name, args, ctx);
    }
  } catch (e) {
    if (isSandgateError(e)) return refusal(e.code, e.message, e.status);
    throw e;
  }
}

async function loadExecution(deps: McpToolDeps, principal: Principal, id: string): Promise<Execution> {
  const { starts: _starts, ...execution } = ownedOrNotFound(principal, await deps.store.get(id), 'execution', id);
  return execution;
}

async function runCode(
  deps: McpToolDeps,
  caller: McpCaller,
  args: Record<string, unknown>,
  ctx: CallContext,
): Promise<McpToolResult> {
  const parsed = ExecutionRequest.safeParse(args);
  if (!parsed.success) return validationRefusal(parsed.error);
  let waiter: ReturnType<RecordEvents['waitForFinal']> | undefined;
  // The waiter subscribes before the record exists (as ?wait=true does), so no end is missed.
  const { id } = await deps.executions.admit(caller, parsed.data, {
    beforeRecord: (newId, limits) => {
      waiter = deps.events.waitForFinal(newId, limits.timeoutMs + deps.waitGraceMs);
      return () => waiter?.cancel();
    },
  });
  const stopFollowing = new AbortController();
  const stop = () => {
    stopFollowing.abort();
    waiter?.cancel();
  };
  ctx.signal.addEventListener('abort', stop, { once: true });
  try {
    const following = ctx.followRun?.(id, stopFollowing.signal).catch(() => {});
    await waiter?.done;
    // The output sent before the result: the stream's own end, or a moment after the run's.
    if (following) await Promise.race([following, new Promise((r) => setTimeout(r, FOLLOW_GRACE_MS))]);
    stopFollowing.abort();
    await following;
  } finally {
    ctx.signal.removeEventListener('abort', stop);
    waiter?.cancel();
  }
  const execution = await loadExecution(deps, caller.principal, id);
  if (!isFinal(execution.status)) {
    return {
      content: [
        {
          type: 'text',
          text: `execution ${id} is still ${execution.status}; read it later with get_execution {"id":"${id}"}`,
        },
      ],
      structuredContent: { id, status: execution.status },
    };
  }
  return executionResult(execution);
}

const IMAGE_TYPES: ReadonlyArray<[string, Buffer]> = [
  ['image/png', Buffer.from([0x89, 0x50, 0x4e, 0x47])],
  ['image/jpeg', Buffer.from([0xff, 0xd8, 0xff])],
  ['image/gif', Buffer.from('GIF8')],
];

/** A finished run: a readable summary, its images as image content, other files embedded. */
export function executionResult(e: Execution): McpToolResult {
  const lines = [
    `execution ${e.id}: ${e.status}${e.exitCode !== null ? ` (exit ${e.exitCode})` : ''}${e.error ? ` — ${e.error.code}: ${e.error.message}` : ''}`,
    `usage: ${e.usage.wallMs} ms wall, ${e.usage.cpuMs} ms CPU, cost ${e.usage.cost}${e.truncated ? '; output truncated' : ''}`,
  ];
  if (e.stdout) lines.push(`stdout:\n${e.stdout}`);
  if (e.stderr) lines.push(`stderr:\n${e.stderr}`);
  if (e.result !== undefined) lines.push(`result: ${JSON.stringify(e.result)}`);
  const content: Content[] = [];
  for (const f of e.files ?? []) {
    const bytes = f.encoding === 'base64' ? Buffer.from(f.content, 'base64') : Buffer.from(f.content, 'utf8');
    const image = IMAGE_TYPES.find(([, magic]) => bytes.subarray(0, magic.length).equals(magic));
    lines.push(`file: ${f.path} (${bytes.length} bytes${image ? `, ${image[0]}` : ''})`);
    const uri = `sandgate://executions/${e.id}/files/${f.path.split('/').map(encodeURIComponent).join('/')}`;
    if (image) content.push({ type: 'image', data: bytes.toString('base64'), mimeType: image[0] });
    else if (f.encoding === 'utf8')
      content.push({ type: 'resource', resource: { uri, mimeType: 'text/plain', text: f.content } });
    else content.push({ type: 'resource', resource: { uri, mimeType: 'application/octet-stream', blob: f.content } });
  }
  const files = e.files?.map((f) => ({ path: f.path, encoding: f.encoding, size: f.content.length }));
  return {
    content: [{ type: 'text', text: lines.join('\n') }, ...content],
    structuredContent: { ...e, ...(files && { files }) },
    isError: e.status !== 'succeeded',
  };
}

function actionView(a: Action) {
  return {
    id: a.id,
    tool: a.tool,
    status: a.status,
    ...(a.result !== undefined && { result: a.result }),
    ...(a.error && { error: a.error }),
    ...(a.approval && { approval: a.approval }),
    egress: a.egress,
    usage: a.usage,
    auditIds: a.auditIds,
  };
}

export function actionResult(a: Action): McpToolResult {
  const view = actionView(a);
  if (a.status === 'awaiting_approval') {
    const expires = a.approval ? `, approval ${a.approval.id} expires at ${a.approval.expiresAt}` : '';
    return {
      content: [
        {
          type: 'text',
          text: `${a.tool} is irreversible and waits for a human approver (action ${a.id}${expires}). Nothing has been done yet. Check with get_action {"id":"${a.id}"}: it becomes succeeded or failed once approved and run, denied or expired otherwise.`,
        },
      ],
      structuredContent: view,
    };
  }
  if (!FINAL_ACTION_STATUSES.includes(a.status)) {
    return {
      content: [
        { type: 'text', text: `action ${a.id} (${a.tool}) is ${a.status}; check with get_action {"id":"${a.id}"}` },
      ],
      structuredContent: view,
    };
  }
  if (a.status !== 'succeeded') {
    const why = a.error ? `${a.error.code}: ${a.error.message}` : a.status;
    return {
      content: [{ type: 'text', text: `action ${a.id} (${a.tool}) ${a.status} — ${why}` }],
      structuredContent: view,
      isError: true,
    };
  }
  const text = typeof a.result === 'string' ? a.result : JSON.stringify(a.result ?? null);
  return { content: [{ type: 'text', text }], structuredContent: view };
}

async function sandgateTool(
  deps: McpToolDeps,
  caller: McpCaller,
  name: string,
  args: Record<string, unknown>,
  ctx: CallContext,
): Promise<McpToolResult> {
  const meta = ctx.meta;
  const parsed = ActionRequest.safeParse({
    tool: name,
    args,
    ...(typeof meta['sandgate/taskId'] === 'string' && { taskId: meta['sandgate/taskId'] }),
    ...(typeof meta['sandgate/reasoning'] === 'string' && { reasoning: meta['sandgate/reasoning'] }),
    ...(meta['sandgate/untrusted'] === true && { untrusted: true }),
  });
  if (!parsed.success) return validationRefusal(parsed.error);
  // As POST /v1/actions: the task the token allows, then the lifecycle's admission.
  const { principal, agent } = caller;
  const taskId = taskIdFor(principal, parsed.data.taskId);
  if (taskId) await taskFor(deps.budgets, principal, taskId);
  const accepted = await deps.toolCalls.admit({ agent, scopes: principal.scopes, taskId }, parsed.data);
  if (accepted.status !== 'awaiting_approval') {
    // Subscribed first, then read: an action that ended in between is not missed.
    const waiter = deps.actionEvents.waitForFinal(accepted.id, TOOL_WAIT_MS);
    const stop = () => waiter.cancel();
    ctx.signal.addEventListener('abort', stop, { once: true });
    try {
      const now = await deps.actions.get(accepted.id);
      if (!now || !FINAL_ACTION_STATUSES.includes(now.status)) await waiter.done;
    } finally {
      waiter.cancel();
      ctx.signal.removeEventListener('abort', stop);
    }
  }
  const action = await deps.actions.get(accepted.id);
  if (!action) throw new SandgateError('not_found', `no action ${accepted.id}`);
  return actionResult(action);
}
