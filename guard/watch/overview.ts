// Each agent as a human watching it needs to see it: its standing (active, suspended, revoked,
// throttled), what it did in the last hour, what it spent today against its cap, and its
// unresolved alerts. Read from state the service keeps anyway; nothing here is stored.
import type { Agent } from '../../contract/agent.ts';
import type { AgentSummary } from '../../contract/console.ts';
import type { Alert, Severity } from '../../contract/watch.ts';
import { type ActivityStore, totalOf } from '../../state/activity.ts';
import type { AgentStore } from '../../state/agents.ts';
import type { AlertStore } from '../../state/alerts.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import type { WatchStore } from '../../state/watch.ts';

export interface OverviewDeps {
  agents: AgentStore;
  watchStore: WatchStore;
  budgets: BudgetStore;
  activity: ActivityStore;
  alerts: AlertStore;
}

export interface Overview {
  list(q: { status?: AgentSummary['status'] | undefined; limit: number }): Promise<AgentSummary[]>;
  one(agent: Agent): Promise<AgentSummary>;
}

const RANK: Record<Severity, number> = { info: 0, warning: 1, high: 2, critical: 3 };
const HOUR_MS = 3_600_000;
/** The unresolved alerts read per listing; beyond that a count would be a guess, so it is said. */
const ALERTS_READ = 1000;

export function createOverview(deps: OverviewDeps): Overview {
  const summarize = async (agent: Agent, unresolved: readonly Alert[]): Promise<AgentSummary> => {
    const now = Date.now();
    const [suspended, throttled, day, hour] = await Promise.all([
      deps.watchStore.suspension(agent.id),
      deps.watchStore.throttle(agent.id),
      deps.budgets.daySpend(agent.id),
      deps.activity.buckets('agent', agent.id, now - HOUR_MS, now + 1, 60_000),
    ]);
    const mine = unresolved.filter((a) => a.agentId === agent.id);
    const worst = mine.reduce<Severity | null>((w, a) => (w && RANK[w] >= RANK[a.severity] ? w : a.severity), null);
    const cap = agent.limits.spendPerDay;
    return {
      ...agent,
      status: agent.revokedAt ? 'revoked' : suspended ? 'suspended' : 'active',
      suspended: suspended ?? null,
      throttled: throttled ?? null,
      // The minute now started is in the last hour; the one 60 minutes ago is not.
      lastHour: totalOf(hour.filter((b) => b.startMs > now - HOUR_MS)),
      today: { spent: day.spent, reserved: day.reserved, cap, left: Math.max(0, cap - day.spent - day.reserved) },
      openAlerts: mine.length,
      worstOpenSeverity: worst,
    };
  };

  return {
    async list({ status, limit }) {
      // A status filter may skip agents: read the newest five times the page, then filter.
      const [agents, unresolved] = await Promise.all([
        deps.agents.list(status ? Math.min(limit * 5, 2500) : limit),
        deps.alerts.unresolved(ALERTS_READ),
      ]);
      const all = await Promise.all(agents.map((a) => summarize(a, unresolved)));
      return all.filter((a) => !status || a.status === status).slice(0, limit);
    },
    async one(agent) {
      return summarize(agent, await deps.alerts.list({ agentId: agent.id, limit: 500 }).then(unresolvedOnly));
    },
  };
}

const unresolvedOnly = (alerts: Alert[]) => alerts.filter((a) => a.status !== 'resolved');
