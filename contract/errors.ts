// The one error registry. ERRORS: every fault Sandgate answers a request with, its stable
// snake_case code and HTTP status (thrown as a SandgateError). RESULT_ERRORS: every code a run's
// or a tool call's `error` field can carry (user-code failures and the service's own endings),
// each with the one builder of its message (`resultError`). README's error tables list both, and
// a test keeps them in step.
import { z } from 'zod';

export const ERRORS = {
  validation_failed: 400,
  bad_request: 400,
  invalid_json: 400,
  unknown_profile: 400,
  language_mismatch: 400,
  limit_exceeds_profile: 400,
  unsupported_input: 400,
  scope_exceeds_grants: 400,
  unknown_tool: 400,
  invalid_destination: 400,
  invalid_cursor: 400,
  unauthorized: 401,
  token_expired: 401,
  agent_revoked: 401,
  budget_exceeded: 402,
  forbidden: 403,
  profile_not_granted: 403,
  tool_not_granted: 403,
  self_approval: 403,
  not_found: 404,
  task_paused: 423,
  agent_suspended: 423,
  route_not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  invalid_state: 409,
  body_too_large: 413,
  code_too_large: 413,
  files_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  headers_too_large: 431,
  internal_error: 500,
  dependency_unavailable: 503,
  engine_unavailable: 503,
  tool_unavailable: 503,
  audit_unavailable: 503,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERRORS;

export class SandgateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'SandgateError';
    this.code = code;
    this.status = ERRORS[code];
    this.headers = headers;
  }
}

const ms = (n: number) => `${n} ms`;

/** The `error` of a run or a tool call: code → message builder. */
export const RESULT_ERRORS = {
  // How a run ended (the program's doing)
  nonzero_exit: (exitCode: number) => `the program exited with code ${exitCode}`,
  timed_out: (timeoutMs: number) => `the run passed its ${ms(timeoutMs)} wall-clock limit`,
  memory_exceeded: (memoryMb: number) => `the run passed its ${memoryMb} MB memory limit`,
  syntax_error: (message: string) => message,
  uncaught_exception: (message: string) => message,
  input_rejected: (why: string) => why,
  sandbox_died: () => 'the sandbox container stopped before the program finished',
  // Ended by someone or something else
  cancelled: (by = '') => (by ? `cancelled by ${by}` : 'the run was cancelled'),
  agent_revoked: () => 'the agent was revoked',
  runner_shutdown: () => 'the runner shut down before the run finished',
  runner_lost: (what: 'run' | 'call' = 'run') =>
    what === 'run'
      ? 'the runner executing this run stopped before it finished; it is not retried, so the code never runs twice'
      : 'the runner stopped during the call; it is not retried',
  budget_exceeded: () => 'the task reached a budget cap before this run started; it was cancelled and refunded',
  engine_unavailable: (why: string) => why,
  engine_fault: (what = 'the engine failed to run this job; see the runner log') => what,
  malformed_job: () => 'the queued job did not match the contract',
  dependency_unavailable: (what: string) => what,
  audit_unavailable: (what: string) => what,
  // Tool calls
  approval_denied: (reason: string | null) => `denied by an approver${reason ? `: ${reason}` : ''}`,
  approval_expired: () => 'no approver decided in time; the action did not run',
  approval_invalid: () => 'no unused approval for this action and these exact arguments; nothing was sent',
  unknown_tool: (tool: string) => `this runner has no tool "${tool}"`,
  tool_unavailable: (why: string) => why,
  tools_unavailable: () => 'this run cannot call tools',
  tool_http_error: (status: number) => `the tool endpoint answered ${status}`,
  tool_timeout: (timeoutMs: number) => `no answer within ${ms(timeoutMs)}`,
  tool_unreachable: (why: string) => `the tool endpoint could not be reached: ${why}`,
  tool_fault: () => 'the tool handler failed; see the runner log',
  egress_refused: (why: string) => why,
  egress_failed: (why: string) => why,
  egress_timeout: (timeoutMs: number) => `timed out after ${ms(timeoutMs)}`,
} as const;

export type ResultErrorCode = keyof typeof RESULT_ERRORS;
export interface ResultError<C extends string = ResultErrorCode> {
  code: C;
  message: string;
}

/** The one way to build the `error` of a run or a tool call. */
export function resultError<C extends ResultErrorCode>(
  code: C,
  ...args: Parameters<(typeof RESULT_ERRORS)[C]>
): ResultError<C> {
  const build = RESULT_ERRORS[code] as (...a: unknown[]) => string;
  return { code, message: build(...args) };
}

export const isSandgateError = (e: unknown): e is SandgateError => e instanceof SandgateError;

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().describe('stable snake_case code from the error registry'),
      message: z.string().describe('what to change'),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const errorBody = (code: string, message: string): ErrorBody => ({ error: { code, message } });
