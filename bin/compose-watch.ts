// The watch's outside world: where alerts are delivered (from config) and what Prometheus sees
// of them (sandgate_alerts_total{detector,severity}, sandgate_alerts_open, watch errors).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../contract/config.ts';
import type { SinkConfig } from '../guard/watch/deliveries.ts';
import type { AlertStore } from '../state/alerts.ts';

export function sinkConfig(config: Config): SinkConfig {
  return {
    ...(config.SANDGATE_ALERT_WEBHOOK && {
      webhook: { url: config.SANDGATE_ALERT_WEBHOOK, secret: config.SANDGATE_ALERT_WEBHOOK_SECRET },
    }),
    ...(config.SANDGATE_PAGERDUTY_ROUTING_KEY && {
      pagerduty: { url: config.SANDGATE_PAGERDUTY_URL, routingKey: config.SANDGATE_PAGERDUTY_ROUTING_KEY },
    }),
    ...(config.SANDGATE_SLACK_WEBHOOK && { slack: { url: config.SANDGATE_SLACK_WEBHOOK } }),
    consoleUrl: config.SANDGATE_PUBLIC_URL,
    timeoutMs: config.SANDGATE_WEBHOOK_TIMEOUT_MS,
  };
}

export function registerAlertMetrics(registry: Registry, alerts: AlertStore) {
  const raised = new Counter({
    name: 'sandgate_alerts_total',
    help: 'alerts raised, by detector and severity',
    labelNames: ['detector', 'severity'],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'sandgate_watch_errors_total',
    help: 'detector runs that failed (never silent)',
    labelNames: ['where'],
    registers: [registry],
  });
  new Gauge({
    name: 'sandgate_alerts_open',
    help: 'alerts open or acknowledged, not yet resolved (all processes)',
    registers: [registry],
    async collect() {
      this.set(await alerts.openCount().catch(() => Number.NaN));
    },
  });
  return {
    raised: (detector: string, severity: string) => raised.inc({ detector, severity }),
    failed: (where: string) => failed.inc({ where }),
  };
}
