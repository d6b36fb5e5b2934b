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

export const CreateTaskRequest = z
  .strictObject({
    goal: z.string().min(1).max(4000),
    budget: Budget.default(Budget.parse({})),
  })
  .meta({ id: 'CreateTaskRequest' });

export const TaskUsage = z.object({ runs: z.number(), toolCalls: z.number(), tokens: z.number(), spend: z.number() });

export const Task = z
  .object({
    id: TaskId,
    agentId: z.string(),
    goal: z.string(),
    status: z.enum(['active', 'exhausted']),
    tainted: z.boolean().describe('the task has received untrusted data: irreversible tools always need a human'),
    taintSources: z.array(z.string()).describe('where the untrusted data came from'),
    budget: Budget,
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
