// The activity counters behind the console's figures and charts: a lifecycle observer (it never
// touches the work it counts) adding each admission, refusal and settled or reported cost to the
// agent's and the task's minute (state/activity.ts). Its failure is logged by the hooks.
import type { ActivityStore } from '../../state/activity.ts';
import type { Hooks, LifecycleEvent } from './hooks.ts';

export function observeActivity(hooks: Hooks, store: ActivityStore): void {
  hooks.observe((e: LifecycleEvent) => {
    switch (e.type) {
      case 'admitted': {
        const { agent, taskId, kind } = e.attempt;
        return store.add({ agentId: agent.id, taskId, metric: kind === 'run' ? 'runs' : 'toolCalls', amount: 1 });
      }
      case 'refused':
        return store.add({ agentId: e.agentId, taskId: e.taskId, metric: 'refused', amount: 1 });
      case 'settled':
        if (e.refund || e.cost <= 0) return;
        return store.add({ agentId: e.agentId, taskId: e.taskId, metric: 'spend', amount: e.cost });
      case 'usage_reported':
        if (e.cost <= 0) return;
        return store.add({ agentId: e.agentId, taskId: e.taskId, metric: 'spend', amount: e.cost });
      default:
        return;
    }
  });
}
