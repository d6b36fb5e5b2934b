// Tools: declared in tools/*.yaml, validated at start-up. A tool is the only way an agent's work
// touches the outside world; its handler holds the credentials, never the agent or the sandbox.
import { z } from 'zod';

export const ToolName = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'lower-case letters, digits and _ (at most 64)');

const Caps = {
  timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  maxResponseBytes: z
    .number()
    .int()
    .min(1)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
};

/** GET/POST to a destination the agent is granted; what comes back is untrusted. */
export const HttpFetchHandler = z.strictObject({ type: z.literal('http_fetch'), ...Caps });

/** The operator's endpoint for the real system (a mail gateway, a payment API). */
export const HttpHandler = z.strictObject({
  type: z.literal('http'),
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the ${NAME} syntax of tool files is meant literally
  url: z.string().describe('may name environment variables as ${NAME}; a missing one leaves the tool unavailable'),
  method: z.enum(['POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
  headers: z
    .record(z.string(), z.strictObject({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/), prefix: z.string().default('') }))
    .default({})
    .describe('credentials: header name → environment variable the handler reads; never shown to the agent'),
  ...Caps,
});

export const ToolDefinition = z.strictObject({
  name: ToolName,
  description: z.string().min(1).max(2000),
  irreversible: z.boolean().default(false).describe('waits for a human approver before it runs'),
  cost: z.number().min(0).max(1000).default(0).describe('charged per call against task and day'),
  args: z.record(z.string(), z.unknown()).describe('JSON Schema of the arguments, checked on every call'),
  handler: z.discriminatedUnion('type', [HttpFetchHandler, HttpHandler]),
});
export type ToolDefinition = z.infer<typeof ToolDefinition>;

export const ToolInfo = z
  .object({
    name: z.string(),
    description: z.string(),
    irreversible: z.boolean(),
    cost: z.number(),
    args: z.record(z.string(), z.unknown()),
    available: z.boolean(),
  })
  .meta({ id: 'Tool' });
