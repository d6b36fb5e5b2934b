// Redis keys that more than one layer touches. Everything else keeps its keys to itself.

/** Set when an agent is revoked: admission checks it atomically with creating the record. */
export const agentRevokedKey = (prefix: string, agentId: string): string => `${prefix}:agent-revoked:${agentId}`;

/** The executions of an agent, so a revocation can cancel its queued and running work. */
export const agentExecutionsKey = (prefix: string, agentId: string): string => `${prefix}:agent-execs:${agentId}`;

/** The executions of a task, so an exhausted task can cancel its queued work. */
export const taskExecutionsKey = (prefix: string, taskId: string): string => `${prefix}:task-execs:${taskId}`;
