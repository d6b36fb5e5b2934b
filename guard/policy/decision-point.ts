// The policy decision point: Cedar (@cedar-policy/cedar-wasm) decides every run. Grants are
// entity attributes of the agent (already narrowed by the token's scopes), so one built-in policy
// serves every agent and the parsed policy set is cached once. Operator policies come from
// `policies/*.cedar`, validated in strict mode against the schema; a set that fails is refused
// and the last good set stays. Fail closed: an error, an empty or odd answer is a deny.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Agent, Scopes } from '../../contract/agent.ts';
import { schemaIsFlat } from './flat-schema.ts';
import { createEntityCache } from './policy-entities.ts';
import { type RequestKind, slicesFor } from './policy-slices.ts';

export interface Decision {
  allowed: boolean;
  /** Ids of the policies that decided (permits when allowed, forbids when denied by one). */
  policies: string[];
  errors: string[];
}

/** What Cedar sees of a tool or a profile (a stand-in has the same shape; see authorize.ts). */
export interface ToolFacts {
  name: string;
  irreversible: boolean;
  handler: { type: string };
}
export interface ProfileFacts {
  name: string;
  engine: string;
  /** Docker profiles only. */
  runtime?: string;
}

export interface PolicyDecisionPoint {
  /** May a caller of this role use this route (identified by "METHOD /path")? */
  callRoute(caller: { id: string; role: string }, route: string, roles: readonly string[]): Decision;
  runProfile(
    agent: Agent,
    scopes: Scopes | undefined,
    profile: ProfileFacts,
    context: { taskTainted: boolean },
  ): Decision;
  callTool(
    agent: Agent,
    scopes: Scopes | undefined,
    tool: ToolFacts,
    context: { taskTainted: boolean; untrustedArgs: boolean },
  ): Decision;
  /** Re-reads the operator policies; on failure the previous set stays active. */
  reload(): Promise<void>;
}

export class PolicyError extends Error {
  override name = 'PolicyError';
}

const here = fileURLToPath(new URL('.', import.meta.url));
const SCHEMA_NAME = 'sandgate';
let generation = 0;

const message = (errors: Array<{ message: string }>) => errors.map((e) => e.message).join('; ');

/** Splits policy text into policies keyed by their @id (or file:index when there is none). */
function policiesById(text: string, origin: string): Record<string, string> {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type === 'failure') throw new PolicyError(`${origin}: does not parse: ${message(parts.errors)}`);
  const out: Record<string, string> = {};
  parts.policies.forEach((policy, i) => {
    const id = /@id\s*\(\s*"([^"]+)"\s*\)/.exec(policy)?.[1] ?? `${origin}#${i}`;
    if (out[id]) throw new PolicyError(`${origin}: policy id "${id}" is used twice`);
    out[id] = policy;
  });
  return out;
}

async function loadPolicySet(policyDir: string): Promise<Record<string, string>> {
  const all = policiesById(await readFile(join(here, 'builtin.cedar'), 'utf8'), 'builtin.cedar');
  const files = (await readdir(policyDir).catch(() => [] as string[])).filter((f) => f.endsWith('.cedar')).sort();
  for (const file of files) {
    const path = join(policyDir, file);
    const own = policiesById(await readFile(path, 'utf8'), path);
    for (const [id, text] of Object.entries(own)) {
      if (all[id]) throw new PolicyError(`${path}: policy id "${id}" is already used`);
      all[id] = text;
    }
  }
  return all;
}

const KINDS = {
  route: { action: 'call_route', principalType: 'Sandgate::Caller', resourceType: 'Sandgate::Route' },
  tool: { action: 'call_tool', principalType: 'Sandgate::Agent', resourceType: 'Sandgate::Tool' },
  profile: { action: 'run_profile', principalType: 'Sandgate::Agent', resourceType: 'Sandgate::Profile' },
} as const satisfies Record<string, RequestKind>;
type Kind = keyof typeof KINDS;
const KNOWN_ACTIONS: ReadonlySet<string> = new Set(Object.values(KINDS).map((k) => k.action));

export async function createPolicyDecisionPoint({
  policyDir,
  cacheSize = 10_000,
  checkRequests = false,
}: {
  policyDir: string;
  /** Decisions remembered (0: none, every call goes to Cedar). */
  cacheSize?: number;
  /**
   * Cedar checks each request and its entities against the schema too (about 30 µs a decision).
   * Off in service: the three request shapes and their entities are built here from typed values,
   * never from input, and the tests turn it on to prove they match the schema (policies are
   * always validated against it). Kept on anyway when the schema is not flat (schemaIsFlat).
   */
  checkRequests?: boolean;
}): Promise<PolicyDecisionPoint> {
  const schema = await readFile(join(here, 'schema.cedarschema'), 'utf8');
  const parsedSchema = cedar.preparseSchema(SCHEMA_NAME, schema);
  if (parsedSchema.type === 'failure') throw new PolicyError(`schema: ${message(parsedSchema.errors)}`);
  const withSchema = checkRequests || !schemaIsFlat(schema);
  /** Validates the operator policies and prepares one sliced set per kind of request; returns their ids. */
  const install = async (): Promise<Record<Kind, string>> => {
    const policies = await loadPolicySet(policyDir);
    const validation = cedar.validate({
      schema,
      policies: { staticPolicies: policies },
      validationSettings: { mode: 'strict' },
    });
    if (validation.type === 'failure') throw new PolicyError(`policies: ${message(validation.errors)}`);
    if (validation.validationErrors.length) {
      const first = validation.validationErrors[0]!;
      throw new PolicyError(`policy "${first.policyId}" does not validate: ${first.error.message}`);
    }
    const id = `set-${++generation}`;
    const slices = slicesFor(policies, KINDS, KNOWN_ACTIONS);
    const ids = {} as Record<Kind, string>;
    for (const kind of Object.keys(KINDS) as Kind[]) {
      const parsed = cedar.preparsePolicySet(`${id}/${kind}`, { staticPolicies: slices[kind] });
      if (parsed.type === 'failure') throw new PolicyError(`policies: ${message(parsed.errors)}`);
      ids[kind] = `${id}/${kind}`;
    }
    return ids;
  };
  let active = await install();

  const { agentEntity, toolEntity, profileEntity } = createEntityCache();

  // A decision depends only on the request (principal and resource with their attributes,
  // action, context) and the active policy set, so identical requests are answered from memory:
  // the cache is keyed by all of it and emptied when the set changes. Revocation and budgets are
  // not policy inputs (checked elsewhere, never cached).
  const cache = new Map<string, Decision>();
  // The action is the kind's own (KINDS).
  type Call = Omit<
    cedar.StatefulAuthorizationCall,
    'action' | 'preparsedPolicySetId' | 'preparsedSchemaName' | 'validateRequest'
  >;
  const decide = (kind: Kind, call: Call): Decision => {
    if (cacheSize === 0) return Object.freeze(evaluate(kind, call));
    const key = `${active[kind]}\u0000${JSON.stringify(call)}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const decision = Object.freeze(evaluate(kind, call));
    if (decision.errors.length === 0) {
      if (cache.size >= cacheSize) cache.clear();
      cache.set(key, decision);
    }
    return decision;
  };
  const evaluate = (kind: Kind, call: Call): Decision => {
    try {
      const answer = cedar.statefulIsAuthorized({
        ...call,
        action: { type: 'Sandgate::Action', id: KINDS[kind].action },
        preparsedPolicySetId: active[kind],
        ...(withSchema && { preparsedSchemaName: SCHEMA_NAME, validateRequest: true }),
      });
      if (answer.type !== 'success')
        return { allowed: false, policies: [], errors: answer.errors.map((e) => e.message) };
      const { decision, diagnostics } = answer.response;
      const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
      // An evaluation error anywhere denies, even when some permit matched.
      return { allowed: decision === 'allow' && errors.length === 0, policies: diagnostics.reason, errors };
    } catch (e) {
      return { allowed: false, policies: [], errors: [(e as Error).message] };
    }
  };

  return {
    async reload() {
      active = await install();
      cache.clear();
    },
    callRoute(caller, route, roles) {
      const principal = { type: 'Sandgate::Caller', id: caller.id };
      const resource = { type: 'Sandgate::Route', id: route };
      return decide('route', {
        principal,
        resource,
        context: {},
        entities: [
          { uid: principal, attrs: { role: caller.role }, parents: [] },
          { uid: resource, attrs: { roles: [...roles] }, parents: [] },
        ],
      });
    },
    callTool(agent, scopes, tool, context) {
      const entity = toolEntity(tool);
      return decide('tool', {
        principal: { type: 'Sandgate::Agent', id: agent.id },
        resource: entity.uid,
        context: { task_tainted: context.taskTainted, untrusted_args: context.untrustedArgs },
        entities: [agentEntity(agent, scopes), entity],
      });
    },
    runProfile(agent, scopes, profile, context) {
      const entity = profileEntity(profile);
      return decide('profile', {
        principal: { type: 'Sandgate::Agent', id: agent.id },
        resource: entity.uid,
        context: { task_tainted: context.taskTainted },
        entities: [agentEntity(agent, scopes), entity],
      });
    },
  };
}
