// Refuse before you reveal. Whether an agent may use a tool or a profile is decided before anything
// about it is checked for the agent (configured? engine up? arguments, limits, files, language?),
// and every refusal at that point reads the same: a name that is no tool, an ungranted tool, a
// scoped-out one and one an operator policy forbids all get one code and one message naming only
// what the agent sent. Names are looked up exactly; any other spelling is not a tool.
//
// Two decisions, both before anything else: "may this agent use it at all" (a clean task, trusted
// inputs) and the full one with the request's taint. Only an agent that passes the first learns
// which policies refused it the second time, since that refusal is about its inputs.
import type { Agent, Scopes } from '../../contract/agent.ts';
import { SandgateError } from '../../contract/errors.ts';
import type { Decision, PolicyDecisionPoint, ProfileFacts, ToolFacts } from './decision-point.ts';

export interface Caller {
  agent: Agent;
  scopes: Scopes | undefined;
}

const CLEAN = { taskTainted: false, untrustedArgs: false };

const by = (d: Decision) => (d.policies.length ? ` (denied by ${d.policies.join(', ')})` : '');

/**
 * Runs both decisions on `facts`, or on a stand-in of the same shape when the name is unknown, so
 * an unknown name costs the same decisions as an ungranted one; the stand-in is never allowed.
 */
function settle<T>(
  found: T | undefined,
  full: () => Decision,
  atAll: () => Decision,
  refuse: () => SandgateError,
  refuseHere: (d: Decision) => SandgateError,
): { found: T; decision: Decision } {
  const decision = full();
  if (found !== undefined && decision.allowed) return { found, decision };
  if (found === undefined || !atAll().allowed) throw refuse();
  throw refuseHere(decision);
}

export function authorizeTool<T extends { definition: ToolFacts }>(
  policy: PolicyDecisionPoint,
  { agent, scopes }: Caller,
  name: string,
  tool: T | undefined,
  context: { taskTainted: boolean; untrustedArgs: boolean },
): { found: T; decision: Decision } {
  const facts: ToolFacts = tool?.definition ?? { name, irreversible: true, handler: { type: 'none' } };
  return settle(
    tool,
    () => policy.callTool(agent, scopes, facts, context),
    () => policy.callTool(agent, scopes, facts, CLEAN),
    () => new SandgateError('tool_not_granted', `this agent's token does not grant tool "${name}"`),
    (d) =>
      new SandgateError(
        'tool_not_granted',
        `tool "${name}" is refused for this call: the task is tainted or the arguments are untrusted${by(d)}`,
      ),
  );
}

export function authorizeProfile<T extends ProfileFacts>(
  policy: PolicyDecisionPoint,
  { agent, scopes }: Caller,
  name: string,
  profile: T | undefined,
  context: { taskTainted: boolean },
): { found: T; decision: Decision } {
  const facts: ProfileFacts = profile ?? { name, engine: 'none' };
  return settle(
    profile,
    () => policy.runProfile(agent, scopes, facts, context),
    () => policy.runProfile(agent, scopes, facts, CLEAN),
    () => new SandgateError('profile_not_granted', `this agent's token does not grant profile "${name}"`),
    (d) =>
      new SandgateError(
        'profile_not_granted',
        `profile "${name}" is refused for this run: the task is tainted${by(d)}`,
      ),
  );
}

/** What GET /v1/tools and /v1/profiles show an agent: what it may use at all. */
export const mayCallTool = (policy: PolicyDecisionPoint, { agent, scopes }: Caller, tool: ToolFacts): boolean =>
  policy.callTool(agent, scopes, tool, CLEAN).allowed;
export const mayRunProfile = (policy: PolicyDecisionPoint, { agent, scopes }: Caller, profile: ProfileFacts): boolean =>
  policy.runProfile(agent, scopes, profile, CLEAN).allowed;
