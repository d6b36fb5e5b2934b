// Shutdown, bounded whatever the dependencies do: every step races its deadline, a step that
// overruns is named in the log and left behind, and everything ends within the grace period plus
// SHUTDOWN_MARGIN_MS. The order is stated once, in compose.ts.
import type { Logger } from 'pino';

/** What shutdown may take beyond SANDGATE_SHUTDOWN_GRACE_MS (closing connections, the pools). */
export const SHUTDOWN_MARGIN_MS = 4000;

export interface Closer {
  name: string;
  close: () => Promise<unknown>;
  /** Runs even when the deadline has passed (it gets a short floor of its own). */
  must?: boolean;
}

export function shutdownClock(graceMs: number, log: Logger) {
  const endBy = Date.now() + graceMs + SHUTDOWN_MARGIN_MS;
  const left = () => Math.max(0, endBy - Date.now());
  const step = async (name: string, fn: () => Promise<unknown>, ms: number) => {
    let timer: NodeJS.Timeout | undefined;
    const overran = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        log.error({ step: name, ms: Math.round(ms) }, 'shutdown step overran its deadline; going on');
        resolve();
      }, ms);
    });
    await Promise.race([
      fn().catch((e: Error) => log.error({ step: name, err: e.message }, 'shutdown step failed')),
      overran,
    ]);
    clearTimeout(timer);
  };
  const closer = (c: Closer) =>
    step(c.name, c.close, c.must ? Math.max(300, Math.min(1000, left())) : Math.min(1000, left()));
  return { left, step, closer };
}
