// The one error registry: every fault Sandgate reports has a stable snake_case code and an HTTP
// status here. Failures of user code are results (see execution.ts), never errors.
import { z } from 'zod';

export const ERRORS = {
  validation_failed: 400,
  invalid_json: 400,
  unknown_profile: 400,
  language_mismatch: 400,
  limit_exceeds_profile: 400,
  unsupported_input: 400,
  scope_exceeds_grants: 400,
  unknown_tool: 400,
  invalid_destination: 400,
  unauthorized: 401,
  token_expired: 401,
  agent_revoked: 401,
  budget_exceeded: 402,
  forbidden: 403,
  profile_not_granted: 403,
  tool_not_granted: 403,
  self_approval: 403,
  not_found: 404,
  route_not_found: 404,
  method_not_allowed: 405,
  invalid_state: 409,
  body_too_large: 413,
  code_too_large: 413,
  files_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
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
