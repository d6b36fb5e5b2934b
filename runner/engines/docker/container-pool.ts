// Containers started ahead of time, each waiting on stdin for the one program it will run. A run
// takes one; the pool refills in the background. Size 0 means every run starts cold.

import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import type { Container, ContainerCreateOptions } from 'dockerode';
import { EngineUnavailable } from '../engine.ts';
import { bounded, DOCKER_DEADLINES as D } from './engine-health.ts';

export interface Sandbox {
  container: Container;
  stream: Duplex;
}

/** A container that could not be started: the engine is failing, nothing of the run has run. */
export class SandboxUnavailable extends EngineUnavailable {
  override name = 'SandboxUnavailable';
}

/**
 * What the engine keeps of the containers it owns: every one it creates is tracked, and every one
 * it is done with is released (removed, and forgotten once removed or failed: the reaper then
 * sees a stray of its own and removes it when Docker answers again).
 */
export interface Ownership {
  track(id: string): void;
  release(container: Container, stream?: Duplex): void;
}

export async function startSandbox(docker: Dockerode, spec: ContainerCreateOptions, own: Ownership): Promise<Sandbox> {
  let container: Container;
  try {
    container = await bounded(D.create, 'create', (abortSignal) => docker.createContainer({ ...spec, abortSignal }));
  } catch (e) {
    throw new SandboxUnavailable((e as Error).message);
  }
  own.track(container.id);
  try {
    // Attach before start so no byte of output is missed.
    const stream = (await bounded(D.attach, 'attach', (abortSignal) =>
      container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true, abortSignal }),
    )) as Duplex;
    stream.pause();
    await bounded(D.start, 'start', (abortSignal) => container.start({ abortSignal }));
    return { container, stream };
  } catch (e) {
    own.release(container);
    throw new SandboxUnavailable((e as Error).message);
  }
}

/** Force-removes a container within its deadline; a failure is left to the reaper. */
export function removeContainer(container: Container): Promise<void> {
  return bounded(D.remove, 'remove', (abortSignal) => container.remove({ force: true, abortSignal })).then(
    () => undefined,
    () => undefined,
  );
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
  readonly #own: Ownership;
  readonly #onError: (e: Error) => void;
  readonly #canStart: () => boolean;

  constructor(opts: {
    docker: Dockerode;
    spec: ContainerCreateOptions;
    size: number;
    own: Ownership;
    onError: (e: Error) => void;
    /** False while the engine is unhealthy: no refill then (the engine refills on recovery). */
    canStart?: () => boolean;
  }) {
    this.#canStart = opts.canStart ?? (() => true);
    this.#docker = opts.docker;
    this.#spec = opts.spec;
    this.#size = opts.size;
    this.#own = opts.own;
    this.#onError = opts.onError;
  }

  get readyCount(): number {
    return this.#ready.length;
  }

  /**
   * A started, never-used container: from the pool when one is ready, otherwise started now. The
   * refill waits for `refillAfter` (the run's end) while others are ready: a container start costs
   * dockerd a core for a while, and the run that took the container should not pay for it.
   */
  async take(refillAfter?: Promise<unknown>): Promise<Sandbox> {
    const sandbox = this.#ready.shift();
    if (sandbox && refillAfter && this.#ready.length > 0) void refillAfter.finally(() => this.fill());
    else this.fill();
    return sandbox ?? startSandbox(this.#docker, this.#spec, this.#own);
  }

  /** A waiting container whose attach stream broke (dockerd restarted, the socket went) is useless. */
  #watch(sandbox: Sandbox): void {
    const drop = () => {
      const at = this.#ready.indexOf(sandbox);
      if (at === -1) return; // taken: the run sees the stream end itself
      this.#ready.splice(at, 1);
      this.#own.release(sandbox.container, sandbox.stream);
      this.fill();
    };
    sandbox.stream.once('close', drop);
    sandbox.stream.once('end', drop);
    sandbox.stream.once('error', drop);
  }

  /** Starts containers until the pool is full (see MAX_PARALLEL_STARTS). */
  fill(): void {
    while (
      !this.#closed &&
      this.#canStart() &&
      this.#ready.length + this.#starting.size < this.#size &&
      this.#starting.size < MAX_PARALLEL_STARTS
    ) {
      const starting: Promise<void> = startSandbox(this.#docker, this.#spec, this.#own)
        .then(async (sandbox) => {
          if (this.#closed) this.#own.release(sandbox.container, sandbox.stream);
          else {
            this.#watch(sandbox);
            this.#ready.push(sandbox);
          }
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

  /** Releases the waiting containers, including one still being started (the engine awaits them). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#starting);
    for (const s of this.#ready.splice(0)) this.#own.release(s.container, s.stream);
  }
}
