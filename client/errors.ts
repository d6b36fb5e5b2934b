// The API's errors as typed classes: one class per code of the error registry
// (contract/errors.ts), all subclasses of SandgateApiError, so `catch (e) { if (e instanceof
// API_ERRORS.budget_exceeded) … }` or `isApiError(e, 'budget_exceeded')` narrow to that code. The
// map's type is over every registered code: a code added to the registry and not here fails
// tsc. Only types come from contract/, so the client loads nothing beyond itself at run time.
import type { ErrorCode } from '../contract/errors.ts';

export interface ApiErrorInit {
  status: number;
  /** Seconds the server asked to wait (429 Retry-After). */
  retryAfterS?: number | undefined;
  /** The request that failed, e.g. `POST /v1/executions`. */
  request: string;
}

export class SandgateApiError<C extends string = string> extends Error {
  readonly code: C;
  readonly status: number;
  readonly retryAfterS: number | undefined;
  readonly request: string;
  constructor(code: C, message: string, init: ApiErrorInit) {
    super(`${code}: ${message}`);
    this.name = 'SandgateApiError';
    this.code = code;
    this.status = init.status;
    this.retryAfterS = init.retryAfterS;
    this.request = init.request;
  }
}

/** The service could not be reached, or did not answer in time (no answer at all). */
export class SandgateNetworkError extends Error {
  override name = 'SandgateNetworkError';
  readonly request: string;
  constructor(request: string, cause: unknown) {
    super(`${request}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.request = request;
  }
}

export type ApiErrorClass<C extends ErrorCode> = new (message: string, init: ApiErrorInit) => SandgateApiError<C>;

function errorClass<C extends ErrorCode>(code: C, name: string): ApiErrorClass<C> {
  const cls = class extends SandgateApiError<C> {
    constructor(message: string, init: ApiErrorInit) {
      super(code, message, init);
      this.name = name;
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

export const API_ERRORS: { readonly [C in ErrorCode]: ApiErrorClass<C> } = {
  validation_failed: errorClass('validation_failed', 'ValidationFailedError'),
  bad_request: errorClass('bad_request', 'BadRequestError'),
  invalid_json: errorClass('invalid_json', 'InvalidJsonError'),
  invalid_cursor: errorClass('invalid_cursor', 'InvalidCursorError'),
  unknown_profile: errorClass('unknown_profile', 'UnknownProfileError'),
  language_mismatch: errorClass('language_mismatch', 'LanguageMismatchError'),
  limit_exceeds_profile: errorClass('limit_exceeds_profile', 'LimitExceedsProfileError'),
  unsupported_input: errorClass('unsupported_input', 'UnsupportedInputError'),
  scope_exceeds_grants: errorClass('scope_exceeds_grants', 'ScopeExceedsGrantsError'),
  unknown_tool: errorClass('unknown_tool', 'UnknownToolError'),
  invalid_destination: errorClass('invalid_destination', 'InvalidDestinationError'),
  unauthorized: errorClass('unauthorized', 'UnauthorizedError'),
  token_expired: errorClass('token_expired', 'TokenExpiredError'),
  agent_revoked: errorClass('agent_revoked', 'AgentRevokedError'),
  budget_exceeded: errorClass('budget_exceeded', 'BudgetExceededError'),
  forbidden: errorClass('forbidden', 'ForbiddenError'),
  profile_not_granted: errorClass('profile_not_granted', 'ProfileNotGrantedError'),
  tool_not_granted: errorClass('tool_not_granted', 'ToolNotGrantedError'),
  self_approval: errorClass('self_approval', 'SelfApprovalError'),
  not_found: errorClass('not_found', 'NotFoundError'),
  task_paused: errorClass('task_paused', 'TaskPausedError'),
  agent_suspended: errorClass('agent_suspended', 'AgentSuspendedError'),
  route_not_found: errorClass('route_not_found', 'RouteNotFoundError'),
  method_not_allowed: errorClass('method_not_allowed', 'MethodNotAllowedError'),
  request_timeout: errorClass('request_timeout', 'RequestTimeoutError'),
  invalid_state: errorClass('invalid_state', 'InvalidStateError'),
  body_too_large: errorClass('body_too_large', 'BodyTooLargeError'),
  code_too_large: errorClass('code_too_large', 'CodeTooLargeError'),
  files_too_large: errorClass('files_too_large', 'FilesTooLargeError'),
  unsupported_media_type: errorClass('unsupported_media_type', 'UnsupportedMediaTypeError'),
  rate_limited: errorClass('rate_limited', 'RateLimitedError'),
  headers_too_large: errorClass('headers_too_large', 'HeadersTooLargeError'),
  internal_error: errorClass('internal_error', 'InternalError'),
  dependency_unavailable: errorClass('dependency_unavailable', 'DependencyUnavailableError'),
  engine_unavailable: errorClass('engine_unavailable', 'EngineUnavailableError'),
  tool_unavailable: errorClass('tool_unavailable', 'ToolUnavailableError'),
  audit_unavailable: errorClass('audit_unavailable', 'AuditUnavailableError'),
};

/** The error of one answer: the class of its code, or the base class for a code this client does not know. */
export function apiError(code: string, message: string, init: ApiErrorInit): SandgateApiError {
  const cls = (API_ERRORS as Record<string, ApiErrorClass<ErrorCode> | undefined>)[code];
  return cls ? new cls(message, init) : new SandgateApiError(code, message, init);
}

export const isApiError = <C extends ErrorCode>(e: unknown, code: C): e is SandgateApiError<C> =>
  e instanceof SandgateApiError && e.code === code;
