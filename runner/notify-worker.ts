// Delivers alerts: one job per alert, receiver and event, retried with backoff by the queue, so
// a receiver that is down never blocks admission and is caught up once it answers. Re-notifies
// an open alert nobody acknowledged on a schedule. Every delivery (and a final failure) is kept
// on the alert and in the audit log.
import { type Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { NOTIFY_QUEUE } from '../contract/queues.ts';
import type { Auditor } from '../guard/audit/auditor.ts';
import { deliver, type Sink, type SinkConfig } from '../guard/watch/deliveries.ts';
import type { NotifyEvent } from '../guard/watch/watch.ts';
import type { AlertStore } from '../state/alerts.ts';
import { queuePrefix } from '../state/keys.ts';
import type { RedisClient } from '../state/redis-client.ts';

export interface NotifyJob {
  alertId: string;
  sink: Sink;
  event: NotifyEvent;
}

export const RENOTIFY_JOB = 'renotify';

export interface NotifyWorkerDeps {
  connection: RedisClient;
  prefix: string;
  alerts: AlertStore;
  audit: Auditor;
  sinks: SinkConfig;
  /** Queues the next round for an open alert (every receiver, then the next re-notify). */
  renotify(alertId: string): Promise<void>;
  logger: Logger;
}

export async function buildNotifyWorker(deps: NotifyWorkerDeps): Promise<{ close(): Promise<void> }> {
  const record = async (data: NotifyJob, ok: boolean, detail: string) => {
    const alert = await deps.alerts.get(data.alertId);
    await deps.alerts.addDelivery(data.alertId, {
      sink: data.sink,
      event: data.event,
      at: new Date().toISOString(),
      ok,
      detail,
    });
    const ctx = { agentId: alert?.agentId, taskId: alert?.taskId ?? null, subject: data.alertId };
    await deps.audit.record('alert.delivered', ctx, {
      alertId: data.alertId,
      sink: data.sink,
      event: data.event,
      ok,
      detail,
    });
  };

  const process = async (job: Job): Promise<void> => {
    if (job.name === RENOTIFY_JOB) {
      const alert = await deps.alerts.get((job.data as { alertId: string }).alertId);
      if (alert?.status === 'open') await deps.renotify(alert.id);
      return;
    }
    const data = job.data as NotifyJob;
    const alert = await deps.alerts.get(data.alertId);
    if (!alert) return;
    const detail = await deliver(data.sink, deps.sinks, alert, data.event);
    await record(data, true, detail);
  };

  const worker = new Worker(NOTIFY_QUEUE, process, {
    connection: deps.connection,
    prefix: queuePrefix(deps.prefix, NOTIFY_QUEUE),
    concurrency: 8,
  });
  worker.on('failed', (job, err) => {
    if (!job || job.name === RENOTIFY_JOB) return;
    const out = job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!out) return;
    // Every retry spent: the alert says so (and the audit log), the rest of the service goes on.
    deps.logger.error(
      { alert: job.data.alertId, sink: job.data.sink, err: err.message },
      'an alert could not be delivered',
    );
    record(job.data as NotifyJob, false, err.message).catch(() => {});
  });
  worker.on('error', () => {}); // Redis outages surface through readiness
  await worker.waitUntilReady();
  return { close: () => worker.close() };
}
