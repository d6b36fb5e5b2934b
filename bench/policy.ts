// Decision cost of the Cedar policy decision point: 100 agents with a few grants each, 20
// operator policies (generated into a temp dir), 20,000 decisions after warm-up.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '../contract/agent.ts';
import { deepFreeze } from '../contract/deep-freeze.ts';
import { createPolicyDecisionPoint } from '../guard/policy/decision-point.ts';
import { loadProfiles } from '../guard/profiles.ts';
import { fmt, percentile } from './lib.ts';

const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 20_000);

export async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'policy-bench-'));
  const rules = Array.from({ length: 20 }, (_, i) =>
    i % 2
      ? `@id("ops:forbid-${i}")\nforbid (principal, action == Sandgate::Action::"run_profile", resource) when { resource.name == "no-such-${i}" };`
      : `@id("ops:tainted-${i}")\nforbid (principal, action, resource is Sandgate::Profile) when { context.task_tainted && resource.engine == "engine-${i}" };`,
  );
  await writeFile(join(dir, 'generated.cedar'), rules.join('\n\n'));
  const cached = await createPolicyDecisionPoint({ policyDir: dir });
  const cold = await createPolicyDecisionPoint({ policyDir: dir, cacheSize: 0 });
  const profiles = [...(await loadProfiles('sandbox-profiles')).values()];
  const names = profiles.map((p) => p.name);
  // Deep-frozen, as the service's parsed agents are (state/agents.ts).
  const agents: Agent[] = Array.from({ length: 100 }, (_, i) =>
    deepFreeze({
      id: `ag_bench${String(i).padStart(8, '0')}`,
      name: `agent-${i}`,
      grants: { profiles: names.filter((_, j) => (i + j) % 2 === 0), tools: [], destinations: [] },
      limits: { runsPerMinute: 60, toolCallsPerMinute: 60, spendPerDay: 10 },
      createdAt: new Date().toISOString(),
      revokedAt: null,
      tokenGeneration: 0,
    }),
  );
  const measure = (pdp: typeof cached) => {
    const decide = (i: number) =>
      pdp.runProfile(agents[i % agents.length]!, undefined, profiles[i % profiles.length]!, {
        taskTainted: i % 7 === 0,
      });
    for (let i = 0; i < 2000; i++) decide(i);
    const us: number[] = [];
    let allowed = 0;
    for (let i = 0; i < DECISIONS; i++) {
      const t = performance.now();
      if (decide(i).allowed) allowed++;
      us.push((performance.now() - t) * 1000);
    }
    return { us: us.sort((a, b) => a - b), allowed };
  };
  const c = measure(cold);
  const h = measure(cached);
  console.log(
    `policy benchmark: ${DECISIONS} decisions, 100 agents, 20 operator policies (+ built-in), ${c.allowed} allowed`,
  );
  console.log(
    `decision, every call to Cedar: p50 ${fmt(percentile(c.us, 50), 1)} µs, p99 ${fmt(percentile(c.us, 99), 1)} µs (target p50 <= 150 µs)`,
  );
  console.log(
    `decision, with the decision cache (the service): p50 ${fmt(percentile(h.us, 50), 1)} µs, p99 ${fmt(percentile(h.us, 99), 1)} µs`,
  );
}
