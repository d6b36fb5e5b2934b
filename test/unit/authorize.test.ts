// The two-decision authorization of guard/policy/authorize.ts against the real decision point and
// the shipped policies. The HTTP side of it is test/security/refuse-before-reveal.test.ts; this
// covers what no request can reach, e.g. a grant that names a tool the service no longer has.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../contract/agent.ts';
import { SandgateError } from '../../contract/errors.ts';
import { authorizeProfile, authorizeTool } from '../../guard/policy/authorize.ts';
import { createPolicyDecisionPoint, type PolicyDecisionPoint } from '../../guard/policy/decision-point.ts';
import { loadProfiles, type ProfileSet } from '../../guard/profiles.ts';

let pdp: PolicyDecisionPoint;
let profiles: ProfileSet;
const agent = (profilesGranted: string[], tools: string[]): Agent => ({
  id: 'ag_test0000001',
  name: 'test',
  grants: { profiles: profilesGranted, tools, destinations: [] },
  limits: { runsPerMinute: 60, toolCallsPerMinute: 60, spendPerDay: 10 },
  createdAt: new Date().toISOString(),
  revokedAt: null,
  tokenGeneration: 0,
});
const payment = { definition: { name: 'make_payment', irreversible: true, handler: { type: 'http' } } };
const clean = { taskTainted: false, untrustedArgs: false };

/** The error thrown, as the client would see it. */
function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof SandgateError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('not refused');
}

beforeAll(async () => {
  pdp = await createPolicyDecisionPoint({ policyDir: 'policies', checkRequests: true });
  profiles = await loadProfiles('sandbox-profiles');
});

describe('authorize', () => {
  it('admits a granted tool and says which policy allowed it', () => {
    const { found, decision } = authorizeTool(
      pdp,
      { agent: agent([], ['make_payment']), scopes: undefined },
      'make_payment',
      payment,
      clean,
    );
    expect(found).toBe(payment);
    expect(decision.policies).toEqual(['grant:call_tool']);
  });

  it('refuses a granted name the service has no tool for like any ungranted name', () => {
    const caller = { agent: agent([], ['ghost']), scopes: undefined };
    expect(refusal(() => authorizeTool(pdp, caller, 'ghost', undefined, clean))).toEqual({
      code: 'tool_not_granted',
      message: `this agent's token does not grant tool "ghost"`,
    });
  });

  it('names the policy only when the agent may use the tool at all and its inputs decided', () => {
    const untrusted = { taskTainted: false, untrustedArgs: true };
    const granted = refusal(() =>
      authorizeTool(pdp, { agent: agent([], ['make_payment']), scopes: undefined }, 'make_payment', payment, untrusted),
    );
    expect(granted.message).toContain('(denied by ops:no-untrusted-payments)');
    const scopedOut = refusal(() =>
      authorizeTool(
        pdp,
        { agent: agent([], ['make_payment']), scopes: { tools: [] } },
        'make_payment',
        payment,
        untrusted,
      ),
    );
    expect(scopedOut.message).toBe(`this agent's token does not grant tool "make_payment"`);
  });

  it('does the same for profiles: a tainted task names its policy, an ungranted profile does not', () => {
    const python = profiles.get('python')!;
    const tainted = refusal(() =>
      authorizeProfile(pdp, { agent: agent(['python'], []), scopes: undefined }, 'python', python, {
        taskTainted: true,
      }),
    );
    expect(tainted.message).toContain('ops:tainted-tasks-only-gvisor');
    const ungranted = refusal(() =>
      authorizeProfile(pdp, { agent: agent(['js'], []), scopes: undefined }, 'python', python, { taskTainted: true }),
    );
    expect(ungranted.message).toBe(`this agent's token does not grant profile "python"`);
    expect(
      refusal(() =>
        authorizeProfile(pdp, { agent: agent(['cobol'], []), scopes: undefined }, 'cobol', undefined, {
          taskTainted: false,
        }),
      ).code,
    ).toBe('profile_not_granted');
  });
});
