import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../contract/agent.ts';
import type { Profile } from '../../contract/profile.ts';
import { createPolicyDecisionPoint, type PolicyDecisionPoint } from '../../guard/policy/decision-point.ts';
import { normaliseName } from '../../guard/policy/names.ts';
import { loadProfiles, type ProfileSet } from '../../guard/profiles.ts';

let profiles: ProfileSet;
let pdp: PolicyDecisionPoint;
const agent = (grants: string[]): Agent => ({
  id: 'ag_test0000001',
  name: 'test',
  grants: { profiles: grants, tools: [], destinations: [] },
  limits: { runsPerMinute: 60, toolCallsPerMinute: 60, spendPerDay: 10 },
  createdAt: new Date().toISOString(),
  revokedAt: null,
  tokenGeneration: 0,
});
const p = (name: string): Profile => profiles.get(name)!;
const calm = { taskTainted: false };

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'policies-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

beforeAll(async () => {
  profiles = await loadProfiles('sandbox-profiles');
  pdp = await createPolicyDecisionPoint({ policyDir: 'policies', checkRequests: true });
});

describe('the policy decision point', () => {
  it('allows only granted profiles, naming the deciding policy', () => {
    const a = agent(['js']);
    expect(pdp.runProfile(a, undefined, p('js'), calm)).toEqual({
      allowed: true,
      policies: ['grant:run_profile'],
      errors: [],
    });
    expect(pdp.runProfile(a, undefined, p('python'), calm).allowed).toBe(false);
    expect(pdp.runProfile(agent([]), undefined, p('js'), calm).allowed).toBe(false);
  });

  it('lets scopes narrow grants, never widen them', () => {
    const a = agent(['js', 'python']);
    expect(pdp.runProfile(a, { profiles: ['js'] }, p('python'), calm).allowed).toBe(false);
    expect(pdp.runProfile(a, { profiles: ['js'] }, p('js'), calm).allowed).toBe(true);
    expect(pdp.runProfile(agent(['js']), { profiles: ['js', 'python'] }, p('python'), calm).allowed).toBe(false);
  });

  it('applies the shipped operator policy: tainted tasks run only under gVisor', () => {
    const a = agent(['python', 'python-gvisor']);
    const denied = pdp.runProfile(a, undefined, p('python'), { taskTainted: true });
    expect(denied).toMatchObject({ allowed: false, policies: ['ops:tainted-tasks-only-gvisor'] });
    expect(pdp.runProfile(a, undefined, p('python-gvisor'), { taskTainted: true }).allowed).toBe(true);
    expect(pdp.runProfile(a, undefined, p('python'), calm).allowed).toBe(true);
  });

  it('lets an operator forbid win over a grant', async () => {
    const dir = await dirWith({
      'no-shell.cedar':
        '@id("ops:no-shell")\nforbid (principal, action == Sandgate::Action::"run_profile", resource) when { resource.name == "shell" };',
    });
    const own = await createPolicyDecisionPoint({ policyDir: dir, checkRequests: true });
    expect(own.runProfile(agent(['shell']), undefined, p('shell'), calm)).toMatchObject({
      allowed: false,
      policies: ['ops:no-shell'],
    });
  });

  it('refuses a broken policy set at start-up, naming the file', async () => {
    const dir = await dirWith({ 'bad.cedar': 'permit (principal, action, resource' });
    await expect(createPolicyDecisionPoint({ policyDir: dir, checkRequests: true })).rejects.toThrow(
      /bad\.cedar: does not parse/,
    );
  });

  it('refuses a set that parses but does not validate', async () => {
    const dir = await dirWith({
      'typo.cedar':
        '@id("ops:typo")\npermit (principal, action == Sandgate::Action::"run_profile", resource) when { principal.isAdmin };',
    });
    await expect(createPolicyDecisionPoint({ policyDir: dir, checkRequests: true })).rejects.toThrow(
      /ops:typo.*does not validate/,
    );
  });

  it('keeps the last good set when a reload fails: a broken file opens nothing', async () => {
    const dir = await dirWith({
      'ok.cedar':
        '@id("ops:no-node")\nforbid (principal, action == Sandgate::Action::"run_profile", resource) when { resource.name == "node" };',
    });
    const own = await createPolicyDecisionPoint({ policyDir: dir, checkRequests: true });
    await writeFile(
      join(dir, 'ok.cedar'),
      '@id("ops:open-all")\npermit (principal, action, resource);\nforbid (principal, action',
    );
    await expect(own.reload()).rejects.toThrow(/does not parse/);
    expect(own.runProfile(agent(['node']), undefined, p('node'), calm)).toMatchObject({
      allowed: false,
      policies: ['ops:no-node'],
    });
    expect(own.runProfile(agent([]), undefined, p('js'), calm).allowed).toBe(false);
  });
});

describe('name normalisation', () => {
  it.each([
    ['Send_Email', 'send_email'],
    ['send\u200bemail', 'sendemail'],
    ['\uff33\uff25\uff2e\uff24_\uff25\uff2d\uff21\uff29\uff2c', 'send_email'],
    ['\ufeffjs', 'js'],
    [' JS ', 'js'],
  ])('%j → %j', (input, expected) => {
    expect(normaliseName(input)).toBe(expected);
  });

  it('keeps _ and - apart', () => {
    expect(normaliseName('send_email')).not.toBe(normaliseName('send-email'));
  });
});

describe('role checks as policy decisions', () => {
  it('lets a role use the routes meant for it and no other', () => {
    const admin = { id: 'admin', role: 'admin' };
    expect(pdp.callRoute(admin, 'POST /v1/agents', ['admin'])).toEqual({
      allowed: true,
      policies: ['role:route'],
      errors: [],
    });
    expect(pdp.callRoute({ id: 'ag_x', role: 'agent' }, 'POST /v1/agents', ['admin']).allowed).toBe(false);
    expect(pdp.callRoute({ id: 'pr_x', role: 'auditor' }, 'GET /v1/profiles', ['agent', 'auditor']).allowed).toBe(true);
  });

  it('lets an operator policy narrow a role further', async () => {
    const dir = await dirWith({
      'freeze.cedar':
        '@id("ops:freeze-agent-creation")\nforbid (principal, action == Sandgate::Action::"call_route", resource == Sandgate::Route::"POST /v1/agents");',
    });
    const own = await createPolicyDecisionPoint({ policyDir: dir, checkRequests: true });
    expect(own.callRoute({ id: 'admin', role: 'admin' }, 'POST /v1/agents', ['admin'])).toMatchObject({
      allowed: false,
      policies: ['ops:freeze-agent-creation'],
    });
    expect(own.callRoute({ id: 'admin', role: 'admin' }, 'GET /v1/agents/:id', ['admin']).allowed).toBe(true);
  });
});
