// Tasks: one agent goal, one budget. Runs and tool calls name a task; the agent reports its own
// model usage against it.
import { z } from 'zod';
import { TaskId } from './execution.ts';

export const Budget = z
  .strictObject({
    maxRuns: z.number().int().min(0).max(1_000_000).default(100),
    maxToolCalls: z.number().int().min(0).max(1_000_000).default(100),
    maxTokens: z.number().int().min(0).max(1e12).default(1_000_000),
    maxSpend: z.number().min(0).max(1e6).default(10),
  })
  .meta({ id: 'Budget' });
export type Budget = z.infer<typeof Budget>;

/** What a task expects to use: work outside it is "access the task should not need" (the watch). */
export const TaskScope = z
  .strictObject({
    profiles: z.array(z.string().max(64)).max(64).optional(),
    tools: z.array(z.string().max(64)).max(256).optional(),
    destinations: z.array(z.string().max(253)).max(256).optional(),
  })
  .meta({ id: 'TaskScope' });
export type TaskScope = z.infer<typeof TaskScope>;

export const CreateTaskRequest = z
  .strictObject({
    goal: z.string().min(1).max(4000),
    budget: Budget.default(Budget.parse({})),
    scope: TaskScope.optional().describe(
      'the profiles, tools and destinations the task expects; anything else raises an alert',
    ),
  })
  .meta({ id: 'CreateTaskRequest' });

export const TaskUsage = z.object({ runs: z.number(), toolCalls: z.number(), tokens: z.number(), spend: z.number() });
export type TaskUsage = z.infer<typeof TaskUsage>;

export const Task = z
  .object({
    id: TaskId,
    agentId: z.string(),
    goal: z.string(),
    status: z.enum(['active', 'exhausted']),
    tainted: z.boolean().describe('the task has received untrusted data: irreversible tools always need a human'),
    taintSources: z.array(z.string()).describe('where the untrusted data came from'),
    budget: Budget,
    scope: TaskScope.nullable(),
    paused: z
      .object({ alertId: z.string().nullable(), by: z.string(), at: z.string(), reason: z.string().nullable() })
      .nullable()
      .describe('set while the task is paused: its work waits'),
    used: TaskUsage,
    reserved: z
      .object({ spend: z.number() })
      .describe('worst-case cost held by admitted work that has not settled yet'),
    remaining: TaskUsage,
    createdAt: z.string(),
  })
  .meta({ id: 'Task' });
export type Task = z.infer<typeof Task>;

export const ReportUsageRequest = z
  .strictObject({
    tokens: z.number().int().min(0).max(1e9),
    cost: z.number().min(0).max(1e6).default(0),
    reasoning: z.string().max(8000).optional().describe('kept for the audit trail'),
    prompt: z
      .string()
      .max(65536)
      .optional()
      .describe('the prompt the agent sent to its model, kept for the audit trail'),
  })
  .meta({ id: 'ReportUsageRequest' });
