// Executions: the request an agent sends, the job a runner takes, the record it reads back.
import { z } from 'zod';
import { filePathProblem } from './file-path.ts';
import { Language, ProfileName } from './profile.ts';

export const ExecutionStatus = z.enum([
  'queued',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'memory_exceeded',
  'cancelled',
  'rejected',
]);
export type ExecutionStatus = z.infer<typeof ExecutionStatus>;
export const FINAL_STATUSES: readonly ExecutionStatus[] = ExecutionStatus.options.filter(
  (s) => s !== 'queued' && s !== 'running',
);
export const isFinal = (s: ExecutionStatus): boolean => FINAL_STATUSES.includes(s);

export const ExecutionId = z.string().regex(/^ex_[A-Za-z0-9_-]{10,64}$/, 'an execution id (ex_…)');
export const TaskId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a task id');

export const InputFile = z.strictObject({
  path: z
    .string()
    .min(1)
    .max(255)
    .superRefine((path, ctx) => {
      const problem = filePathProblem(path);
      if (problem) ctx.addIssue({ code: 'custom', message: `file path ${problem}` });
    })
    .describe('relative to the work directory'),
  content: z.string(),
  encoding: z.enum(['utf8', 'base64']).default('utf8'),
  untrusted: z
    .boolean()
    .optional()
    .describe('the file carries data from an untrusted source: the task becomes tainted'),
});

export const ExecutionRequest = z
  .strictObject({
    profile: ProfileName,
    code: z.string().min(1, 'code must not be empty'),
    language: Language.optional(),
    stdin: z.string().optional(),
    files: z.array(InputFile).max(64).optional(),
    timeoutMs: z.number().int().positive().optional().describe('lower than the profile ceiling, never higher'),
    memoryMb: z.number().int().positive().optional().describe('lower than the profile ceiling, never higher'),
    taskId: TaskId.optional(),
    reasoning: z.string().max(8000).optional().describe('why the agent runs this; kept for the audit trail'),
    untrusted: z
      .boolean()
      .default(false)
      .describe('stdin or the code carries data from an untrusted source: the task becomes tainted'),
  })
  .meta({ id: 'ExecutionRequest' });
export type ExecutionRequest = z.infer<typeof ExecutionRequest>;

const Flag = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1');

export const ExecutionQuery = z.strictObject({
  wait: Flag,
  stream: Flag.describe("answer 201 with the run's event stream (text/event-stream) instead of JSON"),
});

/** `?after=`: the cursor to resume an event stream after (the Last-Event-ID header wins). */
export const StreamQuery = z.strictObject({
  after: z.string().max(64).optional().describe('0, or the `id:` of the last event received'),
});

export const RunLimits = z.strictObject({
  timeoutMs: z.number().int().positive(),
  memoryMb: z.number().int().positive(),
  outputBytes: z.number().int().positive(),
});
export type RunLimits = z.infer<typeof RunLimits>;

/** What travels on the queue: everything a runner needs, nothing it must look up. */
export const ExecutionJob = z.strictObject({
  id: ExecutionId,
  agentId: z.string(),
  taskId: z.string().nullable().default(null),
  profile: ProfileName,
  language: Language,
  code: z.string(),
  stdin: z.string().default(''),
  files: z.array(InputFile).default([]),
  limits: RunLimits,
  /** The token's scopes, so `tools.call` from the code is judged as the agent's own call would be. */
  scopes: z
    .strictObject({
      profiles: z.array(z.string()).optional(),
      tools: z.array(z.string()).optional(),
      destinations: z.array(z.string()).optional(),
    })
    .optional(),
});
export type ExecutionJob = z.infer<typeof ExecutionJob>;

export const Usage = z
  .strictObject({
    cpuMs: z.number().min(0),
    wallMs: z.number().min(0),
    memoryBytes: z.number().int().min(0),
    cost: z.number().min(0),
    measured: z
      .boolean()
      .optional()
      .describe(
        'false when the engine could not measure the run (its container vanished): the cost is then the worst case',
      ),
  })
  .meta({ id: 'Usage' });
export type Usage = z.infer<typeof Usage>;

export const OutputFile = z.strictObject({
  path: z.string(),
  content: z.string(),
  encoding: z.enum(['utf8', 'base64']),
});

export const RunError = z.strictObject({ code: z.string(), message: z.string() });
export type RunError = z.infer<typeof RunError>;

/** What an engine hands back: a failure of user code is a status here, not an exception. */
export const EngineResult = z.strictObject({
  status: z.enum(['succeeded', 'failed', 'timed_out', 'memory_exceeded', 'cancelled']),
  exitCode: z.number().int().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  result: z.unknown().optional(),
  files: z.array(OutputFile).optional(),
  truncated: z.boolean(),
  usage: Usage.omit({ cost: true }),
  error: RunError.optional(),
});
export type EngineResult = z.infer<typeof EngineResult>;

export const Execution = z
  .object({
    id: ExecutionId,
    status: ExecutionStatus,
    profile: ProfileName,
    language: Language,
    agentId: z.string(),
    taskId: z.string().nullable(),
    exitCode: z.number().int().nullable(),
    stdout: z.string(),
    stderr: z.string(),
    result: z.unknown().optional().describe('the completion value (js profile), JSON'),
    files: z.array(OutputFile).optional(),
    truncated: z.boolean().describe('true when output passed the profile cap and was cut'),
    usage: Usage,
    error: RunError.optional(),
    auditId: z.string().nullable().describe('the audit record of the request'),
    auditIds: z
      .array(z.string())
      .describe("every audit record of this execution, in order (request, then the run's end)"),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: 'Execution' });
export type Execution = z.infer<typeof Execution>;

export const ExecutionAccepted = z
  .object({ id: ExecutionId, status: ExecutionStatus })
  .meta({ id: 'ExecutionAccepted' });
