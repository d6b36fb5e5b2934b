// Per-action policy slices and kept entities (decision-point.ts) must decide exactly as the whole
// set and fresh entities would: a policy is left out of a kind of request only when its scope can
// never match one, and an entity is kept only for a value that cannot change.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Agent } from '../../contract/agent.ts';
import { deepFreeze } from '../../contract/deep-freeze.ts';
import { createPolicyDecisionPoint, type ToolFacts } from '../../guard/policy/decision-point.ts';
import { schemaIsFlat } from '../../guard/policy/flat-schema.ts';
import { slicesFor } from '../../guard/policy/policy-slices.ts';

const agentWith = (profiles: string[], tools: string[], id = 'ag_slice000001'): Agent => ({
  id,
  name: 'slice',
  grants: { profiles, tools, destinations: [] },
  limits: { runsPerMinute: 60, toolCallsPerMinute: 60, spendPerDay: 10 },
  createdAt: new Date().toISOString(),
  revokedAt: null,
  tokenGeneration: 0,
});
const js = deepFreeze({ name: 'js', engine: 'isolate' });
const mail: ToolFacts = deepFreeze({ name: 'send_email', irreversible: true, handler: { type: 'http' } });
const clean = { taskTainted: false, untrustedArgs: false };

async function pdpWith(policies: string) {
  const dir = await mkdtemp(join(tmpdir(), 'policy-slices-'));
  await writeFile(join(dir, 'ops.cedar'), policies);
  return createPolicyDecisionPoint({ policyDir: dir, cacheSize: 0, checkRequests: true });
}

const KNOWN = new Set(['call_route', 'call_tool', 'run_profile']);
const PROFILE = { action: 'run_profile', principalType: 'Sandgate::Agent', resourceType: 'Sandgate::Profile' };
const TOOL = { action: 'call_tool', principalType: 'Sandgate::Agent', resourceType: 'Sandgate::Tool' };
const ROUTE = { action: 'call_route', principalType: 'Sandgate::Caller', resourceType: 'Sandgate::Route' };

describe('policy slices', () => {
  const all = {
    any: 'forbid (principal, action, resource) when { false };',
    toolOnly: 'forbid (principal, action == Sandgate::Action::"call_tool", resource);',
    both: 'forbid (principal, action in [Sandgate::Action::"run_profile", Sandgate::Action::"call_tool"], resource) when { false };',
    group: 'forbid (principal, action in Sandgate::Action::"some_group", resource) when { false };',
    callers: 'forbid (principal is Sandgate::Caller, action, resource) when { false };',
    oneAgent: 'forbid (principal == Sandgate::Agent::"ag_x", action, resource);',
    tools: 'forbid (principal, action, resource is Sandgate::Tool) when { resource.irreversible };',
    inTool: 'forbid (principal, action, resource in Sandgate::Tool::"x") when { false };',
  };

  it('keeps for a kind of request exactly the policies whose scope could match it', () => {
    const slices = slicesFor(all, { profile: PROFILE, tool: TOOL, route: ROUTE }, KNOWN);
    expect(Object.keys(slices.profile).sort()).toEqual(['any', 'both', 'group', 'inTool', 'oneAgent']);
    expect(Object.keys(slices.tool).sort()).toEqual([
      'any',
      'both',
      'group',
      'inTool',
      'oneAgent',
      'toolOnly',
      'tools',
    ]);
    expect(Object.keys(slices.route).sort()).toEqual(['any', 'callers', 'group', 'inTool']);
  });

  it('keeps a policy it cannot read', () => {
    expect(Object.keys(slicesFor({ odd: 'not cedar at all' }, { profile: PROFILE }, KNOWN).profile)).toEqual(['odd']);
  });

  it('decides as the whole set: a forbid still wins where its scope matches, and only there', async () => {
    const pdp = await pdpWith(
      [
        '@id("ops:no-irreversible")\nforbid (principal, action, resource is Sandgate::Tool) when { resource.irreversible };',
        '@id("ops:no-tools-when-tainted")\nforbid (principal, action == Sandgate::Action::"call_tool", resource) when { context.task_tainted };',
        '@id("ops:agent-x")\nforbid (principal == Sandgate::Agent::"ag_slice00000x", action, resource);',
        '@id("ops:admins-no-audit")\nforbid (principal is Sandgate::Caller, action, resource == Sandgate::Route::"GET /v1/audit") when { principal.role == "admin" };',
      ].join('\n'),
    );
    const a = deepFreeze(agentWith(['js'], ['send_email']));
    expect(pdp.runProfile(a, undefined, js, { taskTainted: true })).toEqual({
      allowed: true,
      policies: ['grant:run_profile'],
      errors: [],
    });
    expect(pdp.callTool(a, undefined, mail, clean)).toMatchObject({
      allowed: false,
      policies: ['ops:no-irreversible'],
    });
    const reversible = deepFreeze({ name: 'send_email', irreversible: false, handler: { type: 'http' } });
    expect(pdp.callTool(a, undefined, reversible, clean).allowed).toBe(true);
    expect(pdp.callTool(a, undefined, reversible, { ...clean, taskTainted: true })).toMatchObject({
      allowed: false,
      policies: ['ops:no-tools-when-tainted'],
    });
    const x = deepFreeze(agentWith(['js'], ['send_email'], 'ag_slice00000x'));
    expect(pdp.runProfile(x, undefined, js, { taskTainted: false })).toMatchObject({
      allowed: false,
      policies: ['ops:agent-x'],
    });
    expect(pdp.callRoute({ id: 'admin', role: 'admin' }, 'GET /v1/audit', ['admin', 'auditor'])).toMatchObject({
      allowed: false,
      policies: ['ops:admins-no-audit'],
    });
    expect(pdp.callRoute({ id: 'admin', role: 'admin' }, 'GET /v1/agents', ['admin']).allowed).toBe(true);
  });
});

describe('kept entities', () => {
  it('never answers from a stale entity: an agent that is not frozen is read on every call', async () => {
    const pdp = await pdpWith('');
    const a = agentWith(['js'], []);
    expect(pdp.runProfile(a, undefined, js, { taskTainted: false }).allowed).toBe(true);
    a.grants.profiles = []; // a test's literal can change; the service's agents cannot
    expect(pdp.runProfile(a, undefined, js, { taskTainted: false }).allowed).toBe(false);
  });

  it('keeps a frozen agent per scopes object, so scopes still narrow it', async () => {
    const pdp = await pdpWith('');
    const a = deepFreeze(agentWith(['js', 'python'], ['send_email']));
    const onlyPython = deepFreeze({ profiles: ['python'] });
    expect(pdp.runProfile(a, undefined, js, { taskTainted: false }).allowed).toBe(true);
    expect(pdp.runProfile(a, onlyPython, js, { taskTainted: false }).allowed).toBe(false);
    expect(pdp.runProfile(a, deepFreeze({ profiles: ['js'] }), js, { taskTainted: false }).allowed).toBe(true);
    expect(pdp.runProfile(a, undefined, js, { taskTainted: false }).allowed).toBe(true);
    // The same agent changed is a new object: decided on its own grants.
    const changed = deepFreeze({ ...a, grants: { ...a.grants, profiles: ['python'] } });
    expect(pdp.runProfile(changed, undefined, js, { taskTainted: false }).allowed).toBe(false);
    expect(pdp.callTool(changed, onlyPython, mail, clean).allowed).toBe(true);
  });
});

describe('deciding without the schema', () => {
  const ns = (body: string) => `namespace Sandgate { ${body} }`;
  it('is done only for a flat schema: the shipped one is', async () => {
    const { readFile } = await import('node:fs/promises');
    expect(schemaIsFlat(await readFile('guard/policy/schema.cedarschema', 'utf8'))).toBe(true);
    expect(schemaIsFlat(ns('entity A = { n: String, s: Set<String>, b: Bool, l: Long, r: { x: String } };'))).toBe(
      true,
    );
  });

  it('decides as the checked decision would, on the shipped and operator policies', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'policy-same-'));
    await writeFile(
      join(dir, 'ops.cedar'),
      [
        '@id("ops:a")\nforbid (principal, action, resource is Sandgate::Tool) when { resource.irreversible && context.untrusted_args };',
        '@id("ops:b")\nforbid (principal, action, resource is Sandgate::Profile) when { context.task_tainted && resource.runtime != "runsc" };',
        '@id("ops:c")\nforbid (principal is Sandgate::Caller, action, resource) when { principal.role == "auditor" && resource.roles.contains("admin") };',
      ].join('\n'),
    );
    const fast = await createPolicyDecisionPoint({ policyDir: dir, cacheSize: 0 });
    const checked = await createPolicyDecisionPoint({ policyDir: dir, cacheSize: 0, checkRequests: true });
    const profiles = [
      js,
      deepFreeze({ name: 'python', engine: 'docker', runtime: 'runsc' }),
      { name: 'x', engine: 'none' },
    ];
    const tools = [mail, deepFreeze({ name: 'fetch', irreversible: false, handler: { type: 'http_fetch' } })];
    let compared = 0;
    for (const grants of [[], ['js'], ['js', 'python', 'send_email', 'fetch']]) {
      const a = deepFreeze(agentWith(grants, grants));
      for (const scopes of [undefined, deepFreeze({ profiles: ['python'], tools: ['fetch'] })])
        for (const taskTainted of [false, true]) {
          for (const p of profiles)
            expect(fast.runProfile(a, scopes, p, { taskTainted })).toEqual(
              checked.runProfile(a, scopes, p, { taskTainted }),
            );
          for (const t of tools)
            for (const untrustedArgs of [false, true]) {
              const c = { taskTainted, untrustedArgs };
              expect(fast.callTool(a, scopes, t, c)).toEqual(checked.callTool(a, scopes, t, c));
            }
          compared += profiles.length + 2 * tools.length;
        }
    }
    for (const role of ['admin', 'auditor', 'agent'])
      for (const roles of [['admin'], ['admin', 'auditor'], ['agent']]) {
        expect(fast.callRoute({ id: role, role }, 'GET /x', roles)).toEqual(
          checked.callRoute({ id: role, role }, 'GET /x', roles),
        );
        compared++;
      }
    expect(compared).toBe(93);
  });

  it('is not done when the schema holds what only it could tell Cedar', () => {
    for (const body of [
      'entity G; entity A in [G];', // an entity hierarchy
      'entity A; action g; action a in [g] appliesTo { principal: [A], resource: [A] };', // an action group
      'entity A = { ip: ipaddr };', // an extension type
      'entity B; entity A = { owner: B };', // an entity reference
      'entity A = { s: Set<B> }; entity B;',
      'entity A; action a appliesTo { principal: [A], resource: [A], context: { d: decimal } };',
      'entity A tags String;',
    ])
      expect(schemaIsFlat(ns(body)), body).toBe(false);
    expect(schemaIsFlat('not a schema')).toBe(false);
  });
});
