// Every Redis key and channel Sandgate uses, built here and nowhere else, under the instance's
// prefix (two instances on one Redis stay apart). Grouped by what they hold.
export type Keys = ReturnType<typeof redisKeys>;

export function redisKeys(prefix: string) {
  const k = (...parts: string[]) => [prefix, ...parts].join(':');
  return {
    prefix,
    agent: {
      /** The agent record (JSON). */
      record: (agentId: string) => k('agent', agentId),
      /** Set while the agent is revoked: every admission script checks it atomically. */
      revoked: (agentId: string) => k('agent-revoked', agentId),
      /** Its executions and actions, so a revocation reaches all of its work. */
      executions: (agentId: string) => k('agent-execs', agentId),
      actions: (agentId: string) => k('agent-acts', agentId),
      /** GCRA state of its per-minute limit, per kind of work. */
      rate: (kind: 'run' | 'tool', agentId: string) => k('rate', kind, agentId),
      /** Its spend of the current UTC day (hash: day, spent, reserved). */
      spendDay: (agentId: string) => k('spend-day', agentId),
      /** Every agent by creation time (ms): the console's list. */
      all: k('agents'),
    },
    /** A human principal's record (no token), for naming who approved or handled what. */
    principal: (principalId: string) => k('principal', principalId),
    principalToken: (tokenDigest: string) => k('principal-token', tokenDigest),
    task: {
      /** The task hash: budget, counts, spend, status (`none` for work without a task). */
      record: (taskId: string | null) => k('task', taskId ?? 'none'),
      taint: (taskId: string) => k('task-taint', taskId),
      executions: (taskId: string) => k('task-execs', taskId),
      /** Tasks by creation time (ms), of one agent and of all; trimmed to the task TTL. */
      ofAgent: (agentId: string) => k('agent-tasks', agentId),
      all: k('tasks'),
    },
    /**
     * Activity per hour of an agent or a task (hash: `<minute>|<metric>` → count or nanos), for
     * the console's figures and charts; one key per hour keeps every read and expiry bounded.
     */
    activity: (scope: 'agent' | 'task', id: string, hour: number) => k('activity', scope, id, String(hour)),
    /** A worst-case reservation held by admitted work until it is settled. */
    reservation: (workId: string) => k('reservation', workId),
    execution: {
      record: (id: string) => k('exec', id),
      /** `<id> <status>` is published here when an execution reaches a final status. */
      doneChannel: k('exec-done'),
      /** An execution id published here tells its runner, wherever it is, to stop it. */
      cancelChannel: k('exec-cancel'),
    },
    action: {
      record: (id: string) => k('act', id),
      auditIds: (id: string) => k('act-audit', id),
      approval: (id: string) => k('apr', id),
      /** Pending approvals by expiry time (ms). */
      pendingApprovals: k('apr-pending'),
      doneChannel: k('act-done'),
    },
    audit: {
      record: (id: string) => k('audit', 'rec', id),
      all: k('audit', 'all'),
      ofTask: (taskId: string) => k('audit', 'task', taskId),
      ofAgent: (agentId: string) => k('audit', 'agent', agentId),
    },
    watch: {
      /** Set while a human (or a detector) has suspended the agent: JSON of why. */
      suspended: (agentId: string) => k('agent-suspended', agentId),
      /** Set while the task is paused: JSON of why. */
      paused: (taskId: string) => k('task-paused', taskId),
      throttle: (agentId: string) => k('watch', 'throttle', agentId),
      throttleRate: (agentId: string) => k('watch', 'throttle-rate', agentId),
      /** One sliding window per agent and exact call (tool or profile + canonical input). */
      loop: (agentId: string, inputHash: string) => k('watch', 'loop', agentId, inputHash),
      /** One sliding window per agent and result. */
      result: (agentId: string, resultHash: string) => k('watch', 'result', agentId, resultHash),
      rate: (agentId: string) => k('watch', 'rate', agentId),
      agentSeen: (agentId: string) => k('watch', 'seen', agentId),
      taskSeen: (taskId: string) => k('watch', 'task-seen', taskId),
      refusals: (agentId: string) => k('watch', 'refusals', agentId),
      agentSpend: (agentId: string) => k('watch', 'spend', agentId),
      taskSpend: (taskId: string) => k('watch', 'task-spend', taskId),
      /** since (the last resume, ms), total admissions. */
      agentState: (agentId: string) => k('watch', 'state', agentId),
      taskState: (taskId: string) => k('watch', 'task-state', taskId),
      /** The agent's latest audit ids, for the evidence of an alert. */
      recent: (agentId: string) => k('watch', 'recent', agentId),
    },
    alert: {
      record: (id: string) => k('alert', id),
      deliveries: (id: string) => k('alert-deliveries', id),
      /** The open alert of an agent and a detector (dedup). */
      open: (agentId: string, detector: string) => k('alert-open', agentId, detector),
      all: k('alerts'),
      ofAgent: (agentId: string) => k('alerts-agent', agentId),
      openSet: k('alerts-open'),
    },
    /** Heartbeat of a live runner process (TTL): the reaper spares its containers. */
    runner: (runnerId: string) => k('runner', runnerId),
  };
}
