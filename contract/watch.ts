// Watching the agents: the detectors' settings (config, overridable per agent), the responses,
// and the alerts a human handles.
import { z } from 'zod';

export const DETECTORS = ['loop', 'spike', 'cost', 'novelty', 'probing', 'tainted_flow'] as const;
export const Detector = z.enum(DETECTORS);
export type Detector = z.infer<typeof Detector>;

/** The graded response of a detector: tell a human, slow the agent, stop the task, stop the agent. */
export const Response = z.enum(['alert', 'throttle', 'pause_task', 'suspend_agent']);
export type Response = z.infer<typeof Response>;

export const Severity = z.enum(['info', 'warning', 'high', 'critical']);
export type Severity = z.infer<typeof Severity>;

const on = z.boolean().default(true);
const int = (min: number, max: number, d: number) => z.number().int().min(min).max(max).default(d);

/**
 * Defaults are chosen so a realistic, varied workload raises nothing (test/integration/watch-quiet
 * test): a loop is the same call over and over, a spike is several times an agent's own habit
 * and never below an absolute floor, novelty needs an established history.
 */
export const WatchSettings = z
  .strictObject({
    loop: z
      .strictObject({
        enabled: on,
        /** The same tool or profile with the same arguments or code, this many times in the window. */
        repeats: int(2, 10_000, 8),
        /** The same non-empty result this many times in the window, whatever the arguments. */
        resultRepeats: int(2, 10_000, 10),
        windowS: int(1, 86_400, 120),
        response: Response.default('pause_task'),
      })
      .default({ enabled: true, repeats: 8, resultRepeats: 10, windowS: 120, response: 'pause_task' }),
    spike: z
      .strictObject({
        enabled: on,
        /** The rate is counted per bucket of this length; the baseline is an EWMA over buckets. */
        bucketS: int(1, 3600, 60),
        /** A bucket this many times above the agent's own baseline… */
        ratio: z.number().min(1.5).max(1000).default(5),
        /** …and at least this many calls in it… */
        minPerBucket: int(1, 1_000_000, 30),
        /** …once the agent has this many buckets of history. */
        minHistory: int(1, 10_000, 10),
        response: Response.default('throttle'),
      })
      .default({ enabled: true, bucketS: 60, ratio: 5, minPerBucket: 30, minHistory: 10, response: 'throttle' }),
    cost: z
      .strictObject({
        enabled: on,
        /** Spend (settled runs and reported model cost) of an agent, or of one task, in the window. */
        perWindow: z.number().min(0).max(1e6).default(1),
        windowS: int(1, 86_400, 60),
        response: Response.default('pause_task'),
      })
      .default({ enabled: true, perWindow: 1, windowS: 60, response: 'pause_task' }),
    novelty: z
      .strictObject({
        enabled: on,
        /** First use of a tool, profile or destination by an agent with at least this much history. */
        minHistory: int(1, 1_000_000, 50),
        response: Response.default('alert'),
      })
      .default({ enabled: true, minHistory: 50, response: 'alert' }),
    probing: z
      .strictObject({
        enabled: on,
        /** Refusals (403, 402, 429, egress refusals) of one agent in the window. */
        refusals: int(2, 100_000, 10),
        windowS: int(1, 86_400, 60),
        response: Response.default('suspend_agent'),
      })
      .default({ enabled: true, refusals: 10, windowS: 60, response: 'suspend_agent' }),
    tainted_flow: z
      .strictObject({
        enabled: on,
        /** A tainted task reaching for an irreversible tool or a destination new to the task. */
        response: Response.default('suspend_agent'),
      })
      .default({ enabled: true, response: 'suspend_agent' }),
    throttle: z
      .strictObject({
        /** A throttled agent gets this share of its per-minute limits… */
        factor: z.number().min(0.01).max(1).default(0.25),
        /** …for this long. */
        durationS: int(1, 86_400, 600),
      })
      .default({ factor: 0.25, durationS: 600 }),
    /** An open, unacknowledged alert is sent again this often. */
    renotifyS: int(30, 86_400, 900),
  })
  .meta({ id: 'WatchSettings' });
export type WatchSettings = z.infer<typeof WatchSettings>;

/** Per-agent overrides: any part of the settings, merged over the service's. */
export const WatchOverrides = z
  .strictObject({
    loop: WatchSettings.shape.loop.unwrap().partial().optional(),
    spike: WatchSettings.shape.spike.unwrap().partial().optional(),
    cost: WatchSettings.shape.cost.unwrap().partial().optional(),
    novelty: WatchSettings.shape.novelty.unwrap().partial().optional(),
    probing: WatchSettings.shape.probing.unwrap().partial().optional(),
    tainted_flow: WatchSettings.shape.tainted_flow.unwrap().partial().optional(),
  })
  .meta({ id: 'WatchOverrides' });
export type WatchOverrides = z.infer<typeof WatchOverrides>;

export function mergeWatch(base: WatchSettings, over: WatchOverrides | undefined): WatchSettings {
  if (!over) return base;
  const out = { ...base } as Record<string, unknown>;
  for (const [k, v] of Object.entries(over))
    if (v) out[k] = { ...(base as unknown as Record<string, object>)[k], ...v };
  return out as WatchSettings;
}

export const SEVERITY: Record<Detector, Severity> = {
  loop: 'high',
  spike: 'warning',
  cost: 'high',
  novelty: 'warning',
  probing: 'critical',
  tainted_flow: 'critical',
};

export const AlertId = z.string().regex(/^alr_[A-Za-z0-9_-]{10,64}$/, 'an alert id (alr_…)');
export const AlertStatus = z.enum(['open', 'acknowledged', 'resolved']);
export type AlertStatus = z.infer<typeof AlertStatus>;

export const Alert = z
  .object({
    id: AlertId,
    detector: Detector,
    severity: Severity,
    agentId: z.string(),
    taskId: z.string().nullable(),
    status: AlertStatus,
    action: Response.describe('what the service did about it'),
    summary: z.string(),
    evidence: z.record(z.string(), z.unknown()).describe("the detector's figures (counts, window, baseline, target)"),
    auditIds: z.array(z.string()).describe('the audit records that led to it, newest first'),
    /** What a resume would lift, when the response paused or suspended something. */
    resumes: z.object({ taskId: z.string().optional(), agentId: z.string().optional() }).nullable(),
    count: z.number().int().describe('how many times it fired while open (deduplicated per agent and detector)'),
    raisedAt: z.string(),
    lastSeenAt: z.string(),
    acknowledgedBy: z.string().nullable(),
    acknowledgedAt: z.string().nullable(),
    resolvedBy: z.string().nullable(),
    resolvedAt: z.string().nullable(),
    reason: z.string().nullable(),
    deliveries: z.array(
      z.object({ sink: z.string(), event: z.string(), at: z.string(), ok: z.boolean(), detail: z.string() }),
    ),
  })
  .meta({ id: 'Alert' });
export type Alert = z.infer<typeof Alert>;

export const AlertQuery = z.strictObject({
  status: AlertStatus.optional(),
  agentId: z.string().max(80).optional(),
  taskId: z.string().max(80).optional(),
  detector: Detector.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export const AlertUpdate = z
  .strictObject({ status: z.enum(['acknowledged', 'resolved']), reason: z.string().max(2000).optional() })
  .meta({ id: 'AlertUpdate' });

export const HoldReason = z.object({
  alertId: z.string().nullable(),
  by: z.string(),
  at: z.string(),
  reason: z.string().nullable(),
});
export type HoldReason = z.infer<typeof HoldReason>;

export const ResumeRequest = z
  .strictObject({ reason: z.string().max(2000).optional() })
  .nullish() // a POST without a body arrives as null
  .meta({ id: 'ResumeRequest' });
export const SuspendRequest = z
  .strictObject({ reason: z.string().max(2000).optional() })
  .nullish() // a POST without a body arrives as null
  .meta({ id: 'SuspendRequest' });
