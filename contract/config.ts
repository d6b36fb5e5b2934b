// Configuration, parsed once from the environment at the composition root, frozen, passed in.
import { z } from 'zod';
import { WatchSettings } from './watch.ts';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

export const ConfigSchema = z.object({
  PORT: port.default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  /** One node (`redis://`, `rediss://`) or a Redis Cluster's seed nodes (`redis+cluster://h:p,h:p`). */
  REDIS_URL: z
    .union([
      z.url({ protocol: /^rediss?$/ }),
      z
        .string()
        .regex(
          /^rediss?\+cluster:\/\/([^@/]*@)?[^/?#@,]+:\d+(,[^/?#@,]+:\d+)*\/?0?$/,
          'REDIS_URL: redis+cluster://[user:password@]host:port[,host:port…] for a cluster',
        ),
    ])
    .default('redis://127.0.0.1:6379'),
  SANDGATE_ADMIN_TOKEN: z.string().min(24, 'SANDGATE_ADMIN_TOKEN must be at least 24 characters').optional(),
  SANDGATE_DATA_DIR: z.string().min(1).default('./data'),
  SANDGATE_PREFIX: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'SANDGATE_PREFIX: lowercase letters, digits, _ and - only')
    .default('sandgate'),
  SANDGATE_PROFILES_DIR: z.string().min(1).default('./sandbox-profiles'),
  /** Operator Cedar policies (*.cedar), validated at start-up and on SIGHUP. */
  SANDGATE_POLICIES_DIR: z.string().min(1).default('./policies'),
  SANDGATE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Largest request body accepted, bytes (code + stdin + files). */
  SANDGATE_BODY_LIMIT: positiveInt.default(1024 * 1024),
  /** A request whose headers and body have not all arrived by then is cut (408): no slowloris. */
  SANDGATE_REQUEST_TIMEOUT_MS: positiveInt.default(20_000),
  /** The headers alone must arrive within this (at most the request timeout, see loadConfig). */
  SANDGATE_HEADERS_TIMEOUT_MS: positiveInt.default(10_000),
  /** An idle keep-alive connection is closed after this. */
  SANDGATE_KEEP_ALIVE_TIMEOUT_MS: positiveInt.default(5000),
  /** Open connections per listening server; beyond it a new connection is closed at once. */
  SANDGATE_MAX_CONNECTIONS: positiveInt.default(1000),
  /** Requests served on one keep-alive connection before it is closed (0 = no limit). */
  SANDGATE_MAX_REQUESTS_PER_SOCKET: z.coerce.number().int().min(0).default(1000),
  /** How long `?wait=true` holds the request beyond the run's own timeout before answering 202. */
  SANDGATE_WAIT_GRACE_MS: positiveInt.default(30_000),
  /** An event-stream client with more unsent bytes than this is dropped (it resumes with Last-Event-ID). */
  SANDGATE_STREAM_BUFFER_BYTES: positiveInt.default(1024 * 1024),
  /** A heartbeat comment on every open event stream this often. */
  SANDGATE_STREAM_HEARTBEAT_MS: positiveInt.default(15_000),
  /** The longest one event-stream response lasts; the client then resumes with Last-Event-ID. */
  SANDGATE_STREAM_MAX_MS: positiveInt.default(30 * 60_000),
  /** Parallel runs per runner process and engine. */
  SANDGATE_ISOLATE_CONCURRENCY: positiveInt.default(8),
  /**
   * A process that is API and runner (`all`) runs a `?wait=true` request itself when its engine
   * has a free slot there, instead of through the queue (`0` = always the queue).
   */
  SANDGATE_RUN_HERE: z
    .enum(['0', '1'])
    .default('1')
    .transform((v) => v === '1'),
  /**
   * A js run taken here starts in its isolate while its request's audit record is written (its
   * tool calls, output and result held until that record is durable). `0`: it starts after.
   */
  SANDGATE_ISOLATE_EARLY_START: z
    .enum(['0', '1'])
    .default('1')
    .transform((v) => v === '1'),
  /**
   * A js run's synchronous part runs on its isolate thread for at most this long (ms); past it,
   * that attempt is thrown away unseen and the run starts again asynchronously. `0`: always async.
   */
  SANDGATE_ISOLATE_SYNC_SLICE_MS: z.coerce.number().int().min(0).max(1000).default(5),
  SANDGATE_DOCKER_CONCURRENCY: positiveInt.default(4),
  /** The Docker Engine the docker profiles run on. */
  SANDGATE_DOCKER_SOCKET: z.string().min(1).default('/var/run/docker.sock'),
  /** Never-used isolates kept ready per js profile, so a run does not wait for V8 to start one. */
  SANDGATE_ISOLATE_WARM: z.coerce.number().int().min(0).max(64).default(2),
  /** Those isolates are made at a low CPU priority while the thread is idle (Linux, where the thread may raise it back). */
  SANDGATE_ISOLATE_LOW_PRIORITY_REFILL: z
    .enum(['0', '1'])
    .default('1')
    .transform((v) => v === '1'),
  /** BullMQ lock: a runner that stops renewing it for this long is considered crashed. */
  SANDGATE_LOCK_MS: positiveInt.default(30_000),
  /** How often runners look for jobs whose runner crashed. */
  SANDGATE_STALLED_CHECK_MS: positiveInt.default(30_000),
  /** SIGTERM: in-flight runs get this long to finish before they are cancelled. */
  SANDGATE_SHUTDOWN_GRACE_MS: positiveInt.default(10_000),
  /** How long execution records stay readable after they finish. */
  SANDGATE_RECORD_TTL_S: positiveInt.default(7 * 24 * 3600),
  /** Tool declarations (*.yaml), validated at start-up. */
  SANDGATE_TOOLS_DIR: z.string().min(1).default('./tools'),
  /** An undecided approval expires after this long and its action ends `expired` (fail closed). */
  SANDGATE_APPROVAL_TTL_S: positiveInt.max(7 * 24 * 3600).default(900),
  /** How long the messages of an MCP response stream stay resumable (Last-Event-ID). */
  SANDGATE_MCP_EVENT_TTL_S: positiveInt.max(24 * 3600).default(600),
  /** Announces each pending approval with a POST of its JSON (optional). */
  SANDGATE_APPROVAL_WEBHOOK: z.url({ protocol: /^https?$/ }).optional(),
  /** Parallel tool calls per runner process. */
  SANDGATE_ACTIONS_CONCURRENCY: positiveInt.default(8),
  /** Each signed audit checkpoint is POSTed here, out of the service's reach (optional). */
  SANDGATE_AUDIT_WITNESS_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** The audit checkpoint signing key; default $SANDGATE_DATA_DIR/keys/audit-signing.json. */
  SANDGATE_AUDIT_KEY_FILE: z.string().min(1).optional(),
  /** Sealed audit segments (and closed chains) move here: a volume that outlives the pod (optional). */
  SANDGATE_AUDIT_ARCHIVE_DIR: z.string().min(1).optional(),
  /** An audit chain file is sealed and the next segment begun past this many bytes (0 = never by size). */
  SANDGATE_AUDIT_SEGMENT_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(64 * 1024 * 1024),
  /** …or once its first record is this old (0 = never by age). */
  SANDGATE_AUDIT_SEGMENT_AGE_S: z.coerce
    .number()
    .int()
    .min(0)
    .default(24 * 3600),
  /** Sealed segments kept in the live directory before they move to the archive. */
  SANDGATE_AUDIT_LIVE_SEGMENTS: z.coerce.number().int().min(0).default(2),
  /** A sealed segment sealed longer ago than this moves to the archive regardless (0 = no age limit). */
  SANDGATE_AUDIT_LIVE_AGE_S: z.coerce.number().int().min(0).default(0),
  /**
   * Audit batches are written on the event loop (no thread-pool round trip) while writes take
   * this many ms on average; past it the next minute's go to the thread pool (0 = always there).
   */
  SANDGATE_AUDIT_ON_LOOP_WRITE_MS: z.coerce.number().min(0).max(1000).default(2),
  /** A Redis command that has not answered by then fails (a hung Redis must not hang requests). */
  SANDGATE_REDIS_TIMEOUT_MS: positiveInt.default(5000),
  /** A finished run's result is held and retried this long while Redis is away. */
  SANDGATE_RESULT_HOLD_MS: positiveInt.default(300_000),
  /** How often the Docker Engine is probed (half as often while it answers). */
  SANDGATE_DOCKER_PROBE_MS: positiveInt.max(60_000).default(1000),
  /** A runner whose heartbeat is this old counts as gone: the reaper removes its containers. */
  SANDGATE_HEARTBEAT_TTL_MS: positiveInt.min(3000).default(30_000),
  /** Deadline of each outgoing webhook call (approvals, the audit witness). */
  SANDGATE_WEBHOOK_TIMEOUT_MS: positiveInt.max(60_000).default(5000),
  /** How often the Docker reaper looks for containers no live run owns. */
  SANDGATE_REAP_INTERVAL_MS: positiveInt.default(60_000),
  /** Detector thresholds and responses, JSON over the defaults (contract/watch.ts), e.g. {"loop":{"repeats":4}}. */
  SANDGATE_WATCH: z
    .string()
    .default('{}')
    .transform((text, ctx): WatchSettings => {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'SANDGATE_WATCH: not JSON' });
        return z.NEVER;
      }
      const parsed = WatchSettings.safeParse(value);
      if (!parsed.success) {
        for (const i of parsed.error.issues)
          ctx.addIssue({ code: 'custom', message: `${i.path.join('.')}: ${i.message}` });
        return z.NEVER;
      }
      return parsed.data;
    }),
  /** Each alert is POSTed here as JSON, signed with SANDGATE_ALERT_WEBHOOK_SECRET (optional). */
  SANDGATE_ALERT_WEBHOOK: z.url({ protocol: /^https?$/ }).optional(),
  SANDGATE_ALERT_WEBHOOK_SECRET: z
    .string()
    .min(16, 'SANDGATE_ALERT_WEBHOOK_SECRET must be at least 16 characters')
    .optional(),
  /** PagerDuty Events API v2: alerts trigger, acknowledge and resolve incidents (optional). */
  SANDGATE_PAGERDUTY_ROUTING_KEY: z.string().min(1).optional(),
  SANDGATE_PAGERDUTY_URL: z.url({ protocol: /^https?$/ }).default('https://events.pagerduty.com/v2/enqueue'),
  /** A Slack-compatible incoming webhook: alerts as one line of text (optional). */
  SANDGATE_SLACK_WEBHOOK: z.url({ protocol: /^https?$/ }).optional(),
  /** Where humans reach this service (links to the console in alerts). */
  SANDGATE_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Runner-only processes serve /metrics here (0 = off). */
  SANDGATE_RUNNER_METRICS_PORT: port.default(9464),
});

export type Config = Readonly<z.infer<typeof ConfigSchema>>;

/** Parses the environment; throws one message listing every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const relevant = Object.fromEntries(
    Object.keys(ConfigSchema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]),
  );
  const parsed = ConfigSchema.safeParse(relevant);
  const lines = parsed.success
    ? crossChecks(parsed.data)
    : parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  if (!parsed.success || lines.length) throw new Error(`invalid configuration:\n${lines.join('\n')}`);
  return Object.freeze(parsed.data);
}

/** Rules across variables, in the message format of the schema's own. */
function crossChecks(c: z.infer<typeof ConfigSchema>): string[] {
  return c.SANDGATE_HEADERS_TIMEOUT_MS > c.SANDGATE_REQUEST_TIMEOUT_MS
    ? [
        '  SANDGATE_HEADERS_TIMEOUT_MS: must not exceed SANDGATE_REQUEST_TIMEOUT_MS (the headers are part of the request)',
      ]
    : [];
}
