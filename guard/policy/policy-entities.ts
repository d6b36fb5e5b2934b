// The Cedar entities of a decision: the agent (its grants narrowed by the token's scopes), the
// tool or the profile. Built once per value and kept: the service's agents, profiles and tool
// definitions are deep-frozen and a change makes a new object (state/agents.ts), so an entity
// keyed by the object (and the token's scopes object) cannot go stale. A value not frozen all
// the way down (a stand-in for an unknown name, a test's literal) is built on every call.
import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Agent, Scopes } from '../../contract/agent.ts';
import type { ProfileFacts, ToolFacts } from './decision-point.ts';
import { normaliseName } from './names.ts';
import { allowedProfiles, allowedTools } from './profile-grants.ts';

type Entity = cedar.EntityJson;

const frozenDeep = (v: unknown): boolean =>
  !v || typeof v !== 'object' || (Object.isFrozen(v) && Object.values(v).every(frozenDeep));

function keptPer<K extends object>(build: (value: K, scopes: Scopes | undefined) => Entity) {
  const frozen = new WeakSet<object>();
  const stable = (v: object) => {
    if (frozen.has(v)) return true;
    if (!frozenDeep(v)) return false;
    frozen.add(v); // freezing cannot be undone
    return true;
  };
  const unscoped = new WeakMap<K, Entity>();
  const scoped = new WeakMap<K, WeakMap<Scopes, Entity>>();
  return (value: K, scopes?: Scopes): Entity => {
    if (!stable(value) || (scopes && !stable(scopes))) return build(value, scopes);
    const kept = scopes ? scoped.get(value)?.get(scopes) : unscoped.get(value);
    if (kept) return kept;
    const made = build(value, scopes);
    if (!scopes) unscoped.set(value, made);
    else {
      const byScopes = scoped.get(value) ?? new WeakMap<Scopes, Entity>();
      byScopes.set(scopes, made);
      scoped.set(value, byScopes);
    }
    return made;
  };
}

export function createEntityCache() {
  return {
    agentEntity: keptPer<Agent>((agent, scopes) => ({
      uid: { type: 'Sandgate::Agent', id: agent.id },
      attrs: {
        name: agent.name,
        profiles: [...allowedProfiles(agent, scopes)].map(normaliseName),
        tools: [...allowedTools(agent, scopes)].map(normaliseName),
      },
      parents: [],
    })),
    toolEntity: keptPer<ToolFacts>((tool) => {
      const name = normaliseName(tool.name);
      return {
        uid: { type: 'Sandgate::Tool', id: name },
        attrs: { name, irreversible: tool.irreversible, handler: tool.handler.type },
        parents: [],
      };
    }),
    profileEntity: keptPer<ProfileFacts>((profile) => {
      const name = normaliseName(profile.name);
      return {
        uid: { type: 'Sandgate::Profile', id: name },
        attrs: { name, engine: profile.engine, runtime: profile.runtime ?? profile.engine },
        parents: [],
      };
    }),
  };
}
