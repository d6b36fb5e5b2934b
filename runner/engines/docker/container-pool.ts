// Containers started ahead of time, each waiting on stdin for the one program it will run. A run
// takes one; the pool refills in the background. Size 0 means every run starts cold.
import type Dockerode from 'dockerode';
import type { Container, ContainerCreateOptions } from 'dockerode';
import type { Duplex } from 'node:stream';

export interface Sandbox {
  container: Container;
  stream: Duplex;
}

export async function startSandbox(docker: Dockerode, spec: ContainerCreateOptions, track: (id: string) => void): Promise<Sandbox> {
  const container = await docker.createContainer(spec);
  track(container.id);
  try {
    // Attach before start so no byte of output is missed.
    const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as Duplex;
    stream.pause();
    await container.start();
    return { container, stream };
  } catch (e) {
    await container.remove({ force: true }).catch(() => {});
    throw e;
  }
}

/**
 * Container starts in flight per pool. Measured with `npm run bench -- docker` (200 runs, 100 ms
 * apart): 1 gave p50 53 ms, 3 gave 91 ms. dockerd serializes much of a start, so parallel starts
 * only slow each other and the run that waits for one.
 */
const MAX_PARALLEL_STARTS = 1;

export class ContainerPool {
  readonly #ready: Sandbox[] = [];
  readonly #starting = new Set<Promise<void>>();
  #closed = false;
  readonly #docker: Dockerode;
  readonly #spec: ContainerCreateOptions;
  readonly #size: number;
  readonly #track: (id: string) => void;
  readonly #onError: (e: Error) => void;

  constructor(opts: { docker: Dockerode; spec: ContainerCreateOptions; size: number; track: (id: string) => void; onError: (e: Error) => void }) {
    this.#docker = opts.docker;
    this.#spec = opts.spec;
    this.#size = opts.size;
    this.#track = opts.track;
    this.#onError = opts.onError;
  }

  get readyCount(): number {
    return this.#ready.length;
  }

  /** A started, never-used container: from the pool when one is ready, otherwise started now. */
  async take(): Promise<Sandbox> {
    const sandbox = this.#ready.shift();
    this.fill();
    return sandbox ?? startSandbox(this.#docker, this.#spec, this.#track);
  }

  /** Starts containers until the pool is full (see MAX_PARALLEL_STARTS). */
  fill(): void {
    while (!this.#closed && this.#ready.length + this.#starting.size < this.#size && this.#starting.size < MAX_PARALLEL_STARTS) {
      const starting: Promise<void> = startSandbox(this.#docker, this.#spec, this.#track)
        .then(async (sandbox) => {
          if (this.#closed) await sandbox.container.remove({ force: true }).catch(() => {});
          else this.#ready.push(sandbox);
        })
        .catch((e: Error) => {
          this.#lastFailure = Date.now(); // no tight retry loop while Docker is failing
          this.#onError(e);
        })
        .finally(() => {
          this.#starting.delete(starting);
          if (!this.#failedRecently()) this.fill();
        });
      this.#starting.add(starting);
    }
  }

  #lastFailure = 0;
  #failedRecently(): boolean {
    return Date.now() - this.#lastFailure < 1000;
  }

  /** Removes the waiting containers, including one still being started. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#starting);
    const waiting = this.#ready.splice(0);
    await Promise.all(waiting.map((s) => s.container.remove({ force: true }).catch(() => {})));
  }
}
