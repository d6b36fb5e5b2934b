// Removes Sandgate containers that no live run owns: at start-up and periodically, so a crashed
// runner never leaks containers. Containers of this process are removed when no run or pool
// holds them; those of other runners only once that runner is known to be gone.
import type Dockerode from 'dockerode';
import { LABEL } from './container-spec.ts';
import { bounded, DOCKER_DEADLINES as D } from './engine-health.ts';

export interface Reaper {
  /** Returns the number of containers removed. */
  sweep(): Promise<number>;
  /** Removes every container of this process (at close: none may outlive it). */
  sweepOwn(): Promise<number>;
}

export interface ReaperOptions {
  docker: Dockerode;
  prefix: string;
  owner: string;
  isLive: (id: string) => boolean;
  isOwnerAlive: (owner: string) => Promise<boolean>;
  onError: (e: Error) => void;
}

/** A container of this process younger than this may still be on its way into the pool. */
const GRACE_MS = 60_000;

export function createReaper(opts: ReaperOptions): Reaper {
  let running: Promise<number> | undefined;
  const sweep = async (everyOwn = false): Promise<number> => {
    const containers = await bounded(D.list, 'list', (abortSignal) =>
      opts.docker.listContainers({
        all: true,
        filters: { label: [`${LABEL.sandgate}=1`, `${LABEL.prefix}=${opts.prefix}`] },
        abortSignal,
      }),
    );
    const alive = new Map<string, boolean>();
    let removed = 0;
    for (const c of containers) {
      const owner = c.Labels[LABEL.owner] ?? '';
      let orphan: boolean;
      if (owner === opts.owner) {
        orphan = everyOwn || (!opts.isLive(c.Id) && Date.now() - c.Created * 1000 > GRACE_MS);
      } else {
        if (!alive.has(owner)) alive.set(owner, await opts.isOwnerAlive(owner).catch(() => true));
        orphan = !alive.get(owner);
      }
      if (!orphan) continue;
      await bounded(D.remove, 'remove', (abortSignal) =>
        opts.docker.getContainer(c.Id).remove({ force: true, abortSignal }),
      )
        .then(() => removed++)
        .catch((e: Error) => opts.onError(e));
    }
    return removed;
  };
  return {
    sweepOwn: () => sweep(true),
    sweep() {
      running ??= sweep().finally(() => {
        running = undefined;
      });
      return running;
    },
  };
}
