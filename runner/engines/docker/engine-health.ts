// How the Docker Engine is doing, from a probe in the background: every call on a request's path
// reads the last answer instead of asking Docker, so a hung or missing engine costs nothing but
// its own profiles (503 engine_unavailable at once) and recovers by itself when it answers again.
// The probe never throws and never overlaps itself; a state change is logged once.
import { LATE, within } from '../../../contract/within.ts';

/** How long each kind of Docker call may take before it counts as failed (ms). */
export const DOCKER_DEADLINES = {
  probe: 1000,
  create: 10_000,
  attach: 5000,
  start: 10_000,
  inspect: 3000,
  stats: 3000,
  kill: 5000,
  remove: 10_000,
  list: 5000,
} as const;

export interface HealthState {
  healthy: boolean;
  /** Runtimes dockerd offers (runc, runsc, …), from the last probe that answered. */
  runtimes: ReadonlySet<string>;
  /** Why it is unhealthy (the last probe's error). */
  reason: string | undefined;
  /** When the last probe ended (ms since the epoch); 0 before the first. */
  checkedAt: number;
}

export interface EngineHealth {
  state(): HealthState;
  /** Resolves after the first probe has ended (or `ms` passed): start-up needs a first answer. */
  ready(ms: number): Promise<void>;
  /** Probes now (a run found Docker failing): answers sooner than the next scheduled probe. */
  poke(): void;
  onChange(listener: (state: HealthState) => void): void;
  stop(): void;
}

export interface EngineHealthOptions {
  /** Asks the engine for its runtimes; rejects when it does not answer. Given a deadline signal. */
  probe: (signal: AbortSignal) => Promise<ReadonlySet<string>>;
  timeoutMs?: number;
  intervalMs?: number;
  /** Shorter while unhealthy, so recovery is seen within about this long. */
  unhealthyIntervalMs?: number;
  onStateChange?: (state: HealthState) => void;
}

export function createEngineHealth(opts: EngineHealthOptions): EngineHealth {
  const timeoutMs = opts.timeoutMs ?? 1000;
  let state: HealthState = { healthy: false, runtimes: new Set(), reason: 'not probed yet', checkedAt: 0 };
  const listeners: Array<(s: HealthState) => void> = [];
  let timer: NodeJS.Timeout | undefined;
  let probing = false; // one probe at a time
  let stopped = false;
  let firstDone: () => void = () => {};
  const first = new Promise<void>((resolve) => {
    firstDone = resolve;
  });

  const set = (next: HealthState) => {
    const changed = next.healthy !== state.healthy || (!next.healthy && state.checkedAt === 0);
    state = next;
    if (!changed) return;
    for (const l of listeners) {
      try {
        l(next);
      } catch {
        // a listener's fault is its own
      }
    }
  };

  const probeOnce = async () => {
    try {
      const runtimes = await bounded(timeoutMs, 'probe', opts.probe);
      set({ healthy: true, runtimes, reason: undefined, checkedAt: Date.now() });
    } catch (e) {
      set({
        healthy: false,
        runtimes: state.runtimes,
        reason: (e as Error).message || 'the Docker Engine failed',
        checkedAt: Date.now(),
      });
    } finally {
      firstDone();
    }
  };

  const schedule = () => {
    if (stopped) return;
    clearTimeout(timer);
    const every = state.healthy ? (opts.intervalMs ?? 2000) : (opts.unhealthyIntervalMs ?? 1000);
    timer = setTimeout(run, every);
    timer.unref();
  };
  const run = () => {
    if (probing) return;
    probing = true;
    void probeOnce().finally(() => {
      probing = false;
      schedule();
    });
  };

  if (opts.onStateChange) listeners.push(opts.onStateChange);
  run();

  return {
    state: () => state,
    async ready(ms) {
      await within(first, ms);
    },
    poke: run,
    onChange(listener) {
      listeners.push(listener);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * One Docker call under a deadline: `call` gets a signal that aborts it after `ms` (dockerode
 * passes it to the HTTP request), and the promise rejects then even if the call ignores it. The
 * timer is cleared once the call answers, so a stream it returned (attach) stays open past it.
 */
export async function bounded<T>(ms: number, what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const answer = await within(call(controller.signal), ms);
  if (answer !== LATE) return answer;
  const e = new Error(`docker ${what} did not answer within ${ms} ms`);
  controller.abort(e);
  throw e;
}
