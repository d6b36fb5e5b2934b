// Where an alert goes, and in which words: a generic webhook (the alert as JSON, signed with
// HMAC-SHA256 over the body in `X-Sandgate-Signature: sha256=<hex>`), PagerDuty's Events API v2
// (trigger, acknowledge, resolve under one dedup_key) and a Slack-compatible text webhook. Each
// POST has a deadline; a receiver that fails throws, and the queue retries it with backoff.
import { createHmac } from 'node:crypto';
import type { Alert, Severity } from '../../contract/watch.ts';
import type { NotifyEvent } from './watch.ts';

export type Sink = 'webhook' | 'pagerduty' | 'slack';

export interface SinkConfig {
  webhook?: { url: string; secret: string | undefined };
  pagerduty?: { url: string; routingKey: string };
  slack?: { url: string };
  /** Where a human opens the alert (the console), for links. */
  consoleUrl?: string | undefined;
  timeoutMs: number;
}

export const configuredSinks = (c: SinkConfig): Sink[] =>
  (['webhook', 'pagerduty', 'slack'] as const).filter((s) => c[s] !== undefined);

export const signature = (secret: string, body: string): string =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

const PD_SEVERITY: Record<Severity, 'critical' | 'error' | 'warning' | 'info'> = {
  critical: 'critical',
  high: 'error',
  warning: 'warning',
  info: 'info',
};

const link = (c: SinkConfig, alert: Alert) =>
  c.consoleUrl
    ? `${c.consoleUrl.replace(/\/$/, '')}/console/#/alerts?alert=${encodeURIComponent(alert.id)}`
    : undefined;

/** The request a sink gets for an alert event. Pure. */
export function buildDelivery(
  sink: Sink,
  c: SinkConfig,
  alert: Alert,
  event: NotifyEvent,
): { url: string; headers: Record<string, string>; body: string } {
  const json = { 'content-type': 'application/json' };
  if (sink === 'webhook') {
    const body = JSON.stringify({
      event: `alert.${event}`,
      sentAt: new Date().toISOString(),
      alert,
      link: link(c, alert) ?? null,
    });
    const secret = c.webhook!.secret;
    return {
      url: c.webhook!.url,
      headers: { ...json, ...(secret && { 'x-sandgate-signature': signature(secret, body) }) },
      body,
    };
  }
  if (sink === 'pagerduty') {
    const action = event === 'resolve' ? 'resolve' : event === 'acknowledge' ? 'acknowledge' : 'trigger';
    const href = link(c, alert);
    const body = JSON.stringify({
      routing_key: c.pagerduty!.routingKey,
      event_action: action,
      dedup_key: alert.id,
      ...(action === 'trigger' && {
        payload: {
          summary: `Sandgate ${alert.detector}: ${alert.summary}`.slice(0, 1024),
          source: 'sandgate',
          severity: PD_SEVERITY[alert.severity],
          timestamp: alert.raisedAt,
          component: alert.agentId,
          group: alert.taskId ?? 'no task',
          class: alert.detector,
          custom_details: {
            alert: alert.id,
            action: alert.action,
            agent: alert.agentId,
            task: alert.taskId,
            count: alert.count,
            evidence: alert.evidence,
            auditIds: alert.auditIds,
          },
        },
        ...(href && { links: [{ href, text: 'Open in the Sandgate console' }] }),
      }),
    });
    return { url: c.pagerduty!.url, headers: json, body };
  }
  const verb = { trigger: 'ALERT', renotify: 'STILL OPEN', acknowledge: 'acknowledged', resolve: 'resolved' }[event];
  const href = link(c, alert);
  const text = `[Sandgate] ${verb}: ${alert.detector} (${alert.severity}) on agent ${alert.agentId}${alert.taskId ? `, task ${alert.taskId}` : ''}: ${alert.summary}. The service responded: ${alert.action}.${href ? ` ${href}` : ''}`;
  return { url: c.slack!.url, headers: json, body: JSON.stringify({ text }) };
}

/** POSTs one delivery within the deadline; throws when the receiver fails (the queue retries). */
export async function deliver(sink: Sink, c: SinkConfig, alert: Alert, event: NotifyEvent): Promise<string> {
  const d = buildDelivery(sink, c, alert, event);
  const res = await fetch(d.url, {
    method: 'POST',
    headers: d.headers,
    body: d.body,
    signal: AbortSignal.timeout(c.timeoutMs),
    redirect: 'error',
  });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`${sink} answered ${res.status}`);
  return `${sink} answered ${res.status}`;
}
