// An agent's grants narrowed by its token's scopes (the Cedar decision point's input), and the
// check that a token's scopes name only what was granted. Nothing listed means nothing allowed.
import type { Agent, Scopes } from '../../contract/agent.ts';
import { SandgateError } from '../../contract/errors.ts';

export function allowedProfiles(agent: Agent, scopes: Scopes | undefined): Set<string> {
  const granted = new Set(agent.grants.profiles);
  if (!scopes?.profiles) return granted;
  return new Set(scopes.profiles.filter((p) => granted.has(p)));
}

export function allowedTools(agent: Agent, scopes: Scopes | undefined): Set<string> {
  const granted = new Set(agent.grants.tools);
  if (!scopes?.tools) return granted;
  return new Set(scopes.tools.filter((t) => granted.has(t)));
}

/** Destinations the agent may reach, narrowed by the token's scopes. */
export function allowedDestinations(agent: Agent, scopes: Scopes | undefined): string[] {
  if (!scopes?.destinations) return [...agent.grants.destinations];
  return scopes.destinations.filter((d) => agent.grants.destinations.includes(d));
}

/** A scope may only name what the agent was granted. */
export function assertScopesWithinGrants(agent: Agent, scopes: Scopes | undefined): void {
  if (!scopes) return;
  const pairs = [
    ['profiles', scopes.profiles, agent.grants.profiles],
    ['tools', scopes.tools, agent.grants.tools],
    ['destinations', scopes.destinations, agent.grants.destinations],
  ] as const;
  for (const [kind, asked, granted] of pairs) {
    const extra = (asked ?? []).filter((x) => !granted.includes(x));
    if (extra.length) {
      throw new SandgateError(
        'scope_exceeds_grants',
        `scopes.${kind} names what the agent is not granted: ${extra.join(', ')}`,
      );
    }
  }
}
