// Agents, their grants and their short-lived tokens.
import { z } from 'zod';
import { TaskId } from './execution.ts';
import { HUMAN_ROLES } from './principal.ts';
import { ProfileName } from './profile.ts';
import { HoldReason, WatchOverrides } from './watch.ts';

const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/, 'letters, digits, space . _ - (at most 64)');
const NameList = z.array(z.string().min(1).max(253)).max(256);

export const Grants = z
  .strictObject({
    profiles: z.array(ProfileName).max(64).default([]),
    tools: NameList.default([]),
    destinations: NameList.default([]),
  })
  .meta({ id: 'Grants' });
export type Grants = z.infer<typeof Grants>;

export const AgentLimits = z
  .strictObject({
    runsPerMinute: z.number().int().positive().max(100_000).default(60),
    toolCallsPerMinute: z.number().int().positive().max(100_000).default(60),
    spendPerDay: z.number().positive().max(1e6).default(10),
  })
  .meta({ id: 'AgentLimits' });
export type AgentLimits = z.infer<typeof AgentLimits>;

export const CreateAgentRequest = z
  .strictObject({
    name: Name,
    grants: Grants,
    limits: AgentLimits.optional(),
    watch: WatchOverrides.optional().describe("this agent's detector thresholds and responses, over the service's"),
  })
  .meta({ id: 'CreateAgentRequest' });

export const Agent = z
  .object({
    id: z.string(),
    name: z.string(),
    grants: Grants,
    limits: AgentLimits,
    watch: WatchOverrides.optional(),
    suspended: HoldReason.nullable()
      .optional()
      .describe('set while the agent is suspended: its work is refused (423) or waits'),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
    tokenGeneration: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('raised when re-enabled: tokens of older generations are refused'),
  })
  .meta({ id: 'Agent' });
export type Agent = z.infer<typeof Agent>;

export const MAX_TOKEN_TTL_S = 3600;
export const DEFAULT_TOKEN_TTL_S = 900;

/** Scopes narrow a token below the agent's grants; a scope naming anything not granted is refused. */
export const Scopes = z
  .strictObject({
    profiles: z.array(ProfileName).max(64).optional(),
    tools: NameList.optional(),
    destinations: NameList.optional(),
  })
  .meta({ id: 'Scopes' });
export type Scopes = z.infer<typeof Scopes>;

export const CreateTokenRequest = z
  .strictObject({
    ttlSeconds: z.number().int().min(1).max(MAX_TOKEN_TTL_S).default(DEFAULT_TOKEN_TTL_S),
    scopes: Scopes.optional(),
    taskId: TaskId.optional(),
    resource: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional()
      .describe(
        'RFC 8707 resource indicator: mint the token for the MCP endpoint (its URL, as in GET /.well-known/oauth-protected-resource); absent = a token for the REST API',
      ),
  })
  .meta({ id: 'CreateTokenRequest' });

export const TokenResponse = z.object({ token: z.string(), expiresAt: z.string() }).meta({ id: 'TokenResponse' });

export const AgentId = z.string().regex(/^ag_[A-Za-z0-9_-]{10,64}$/, 'an agent id (ag_…)');

export const CreatePrincipalRequest = z
  .strictObject({ name: Name, role: z.enum(HUMAN_ROLES) })
  .meta({ id: 'CreatePrincipalRequest' });

export const PrincipalCreated = z
  .object({ id: z.string(), name: z.string(), role: z.enum(HUMAN_ROLES), token: z.string() })
  .meta({ id: 'PrincipalCreated' });

export const RevokeRequest = z
  .strictObject({ reason: z.string().max(2000).optional().describe('kept in the audit trail') })
  .nullish() // a POST without a body (fastify hands over null) is a revoke without a reason
  .meta({ id: 'RevokeRequest' });

export const Revocation = z
  .object({
    id: z.string(),
    revokedAt: z.string(),
    cancelledExecutions: z.number().int(),
    cancelledActions: z.number().int(),
  })
  .meta({ id: 'Revocation' });
