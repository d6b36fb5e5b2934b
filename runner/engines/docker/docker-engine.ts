// The Docker engine: the only importer of dockerode. One container, one run: a run takes a
// started container from its profile's pool (or starts one), writes the program to its stdin,
// reads capped output until the supervisor's trailer (exit status, then the files of out/),
// reads usage and OOM kills from the cgroup, and removes the container, always. Timeouts and
// cancels read the usage, then kill the container. Nothing the program writes decides the
// verdict (run-verdict.ts): see images/entrypoint.sh for why it cannot reach the supervisor.
import type { Duplex } from 'node:stream';
import Dockerode, { type Container } from 'dockerode';
import { resultError } from '../../../contract/errors.ts';
import type { EngineResult, ExecutionJob } from '../../../contract/execution.ts';
import type { DockerProfile, Profile } from '../../../contract/profile.ts';
import type { Engine } from '../engine.ts';
import type { OutputListener } from '../output-collector.ts';
import { ContainerPool, type Ownership, removeContainer, type Sandbox, SandboxUnavailable } from './container-pool.ts';
import { containerSpec } from './container-spec.ts';
import { type ContainerUsage, createUsageReader } from './container-usage.ts';
import { bounded, createEngineHealth, DOCKER_DEADLINES, type EngineHealth, type HealthState } from './engine-health.ts';
import { outputFiles } from './output-files.ts';
import { OutputReader, type Trailer } from './output-reader.ts';
import { createReaper, type Reaper } from './reaper.ts';
import { runVerdict, type Verdict } from './run-verdict.ts';
import { encodeInput, InputRejected } from './stdin-protocol.ts';

export interface DockerEngineOptions {
  profiles: readonly DockerProfile[];
  /** Redis prefix of this instance (labels, so reapers of two instances stay apart). */
  prefix: string;
  /** This runner process's id (container label `sandgate.owner`). */
  owner: string;
  /** Is the runner that owns a container still alive? Unknown must answer true. */
  isOwnerAlive: (owner: string) => Promise<boolean>;
  /** The Docker Engine's socket (default /var/run/docker.sock). */
  socketPath?: string;
  reapIntervalMs?: number;
  /** How often the engine is probed while it is down (twice that while it answers). */
  probeIntervalMs?: number;
  onError?: (e: Error, what: string) => void;
  /** Told once per change: the engine became unhealthy (with why) or healthy again. */
  onHealthChange?: (state: HealthState) => void;
}

export interface DockerEngine extends Engine {
  /** Profiles that can run now: the engine answered its last probe and has their runtime. */
  available(): ReadonlySet<string>;
  health: EngineHealth;
  reaper: Reaper;
}

/**
 * How long after the engine has stopped a run (deadline, cancel, shutdown) the run ends even if
 * Docker never closes its stream (a hung engine): the container is left for the reaper.
 */
const FORCE_END_MS = 1500;

/** How long after a run's end its container's removal and the pool's refill start. */
const AFTER_RUN_MS = 20;

/** What close() takes at least: containers it cannot remove by then are left for the next reaper. */
const CLOSE_MS = 3000;

type Ending = 'timed_out' | 'cancelled';

export function createDockerEngine(opts: DockerEngineOptions): DockerEngine {
  const docker = new Dockerode({ socketPath: opts.socketPath ?? '/var/run/docker.sock' });
  const onError = opts.onError ?? (() => {});
  const readUsage = createUsageReader();
  const live = new Set<string>(); // containers this process owns: pooled, running, being removed
  const removals = new Set<Promise<unknown>>();
  const pools = new Map<string, ContainerPool>();
  let closed = false;

  const health = createEngineHealth({
    unhealthyIntervalMs: opts.probeIntervalMs ?? 1000,
    intervalMs: 2 * (opts.probeIntervalMs ?? 1000),
    probe: async (abortSignal) => {
      // The typings lack the options argument dockerode takes (docker.js: ping(opts), info(opts)).
      const withSignal = docker as unknown as {
        ping(o: object): Promise<unknown>;
        info(o: object): Promise<{ Runtimes?: Record<string, unknown> }>;
      };
      await withSignal.ping({ abortSignal });
      const info = await withSignal.info({ abortSignal });
      return new Set(Object.keys(info.Runtimes ?? {}));
    },
    onStateChange: (state) => {
      opts.onHealthChange?.(state);
      // Back after an outage: warm the pools again (they do not refill while it is down).
      if (state.healthy && !closed) for (const p of opts.profiles) if (state.runtimes.has(p.runtime)) poolFor(p).fill();
    },
  });
  const healthy = () => health.state().healthy;

  /** Removes a container, after `after` when given; close() waits for every one of them. */
  const release = (container: Container, stream?: Duplex, after: Promise<unknown> = Promise.resolve()) => {
    const p = after
      .then(() => {
        stream?.destroy();
        return removeContainer(container);
      })
      .finally(() => {
        live.delete(container.id);
        removals.delete(p);
      });
    removals.add(p);
  };
  const own: Ownership = { track: (id) => live.add(id), release: (c, stream) => release(c, stream) };
  const remove = (sandbox: Sandbox, after?: Promise<unknown>) => release(sandbox.container, sandbox.stream, after);

  const specFor = (profile: DockerProfile, memoryMb: number) =>
    containerSpec({ profile, memoryMb, prefix: opts.prefix, owner: opts.owner });

  const poolFor = (profile: DockerProfile): ContainerPool => {
    let pool = pools.get(profile.name);
    if (!pool) {
      pool = new ContainerPool({
        docker,
        spec: specFor(profile, profile.limits.memoryMb),
        size: profile.pool,
        own,
        onError: (e) => {
          // While the engine is known to be down, its health line has said so already.
          if (healthy()) onError(e, `pool ${profile.name}`);
          health.poke();
        },
        canStart: healthy,
      });
      pools.set(profile.name, pool);
    }
    return pool;
  };

  const available = (): ReadonlySet<string> => {
    const state = health.state();
    if (!state.healthy) return new Set();
    return new Set(opts.profiles.filter((p) => state.runtimes.has(p.runtime)).map((p) => p.name));
  };

  const reaper = createReaper({
    docker,
    prefix: opts.prefix,
    owner: opts.owner,
    isLive: (id) => live.has(id),
    isOwnerAlive: opts.isOwnerAlive,
    onError: (e) => onError(e, 'reaper'),
  });
  // A sweep that meets a failing Docker logs (throttled) and tries again next time.
  const sweep = () => (healthy() ? reaper.sweep().catch((e: Error) => onError(e, 'reaper')) : Promise.resolve());
  const reapTimer = setInterval(() => void sweep(), opts.reapIntervalMs ?? 60_000);
  reapTimer.unref();

  // Start-up: clear what crashed runs left behind, then warm the pools of available profiles
  // (the health probe warms them too, whenever the engine comes back).
  const startup = health
    .ready(DOCKER_DEADLINES.probe + 500)
    .then(sweep)
    .then(() => {
      const names = available();
      for (const p of opts.profiles) if (names.has(p.name) && !closed) poolFor(p).fill();
    })
    .catch((e: Error) => onError(e, 'start-up'));

  /** A started container whose stream is still open (one broken by a Docker restart is dropped). */
  async function takeSandbox(profile: DockerProfile, memoryMb: number, runEnded: Promise<unknown>): Promise<Sandbox> {
    const pool =
      memoryMb === profile.limits.memoryMb
        ? poolFor(profile)
        : new ContainerPool({
            docker,
            spec: specFor(profile, memoryMb),
            size: 0,
            own,
            onError: (e) => onError(e, 'cold start'),
          });
    for (let attempt = 0; attempt < 3; attempt++) {
      let sandbox: Sandbox;
      try {
        sandbox = await pool.take(runEnded);
      } catch (e) {
        health.poke();
        throw e;
      }
      if (!sandbox.stream.destroyed && !sandbox.stream.readableEnded) return sandbox;
      remove(sandbox);
    }
    health.poke();
    throw new SandboxUnavailable('the containers Docker started could not be reached');
  }

  async function run(
    job: ExecutionJob,
    profile: DockerProfile,
    signal: AbortSignal,
    output?: OutputListener,
  ): Promise<EngineResult> {
    let input: ReturnType<typeof encodeInput>;
    try {
      input = encodeInput(job, profile);
    } catch (e) {
      if (!(e instanceof InputRejected)) throw e;
      // Nothing ran: measured, and zero.
      const reader = new OutputReader('-', job.limits.outputBytes, 0);
      return withOutput(
        reader,
        { status: 'failed', exitCode: null, error: resultError('input_rejected', e.message) },
        NOTHING_RAN,
        0,
      );
    }
    const started = performance.now();
    if (!healthy()) throw new SandboxUnavailable(health.state().reason ?? 'the Docker Engine is unavailable');
    // Removal and refill wait until the run's result is on its way (AFTER_RUN_MS): dockerd's work
    // for them would otherwise compete with the run's last steps for the same cores.
    let runEnded: () => void = () => {};
    const ended = new Promise<void>((resolve) => {
      runEnded = () => setTimeout(resolve, AFTER_RUN_MS).unref();
    });
    const sandbox = await takeSandbox(profile, job.limits.memoryMb, ended);
    const reader = new OutputReader(input.nonce, job.limits.outputBytes, input.outLimit, output);
    let ending: Ending | undefined;
    let usageAtEnd: Promise<ContainerUsage | undefined> | undefined;
    let forceEnd = () => {};
    const end = (why: Ending) => {
      if (ending) return;
      ending = why;
      // Usage first: the cgroup goes with the container, and a run that was stopped is billed
      // for what it used up to here, like any other.
      usageAtEnd = readUsage(sandbox.container).catch(() => undefined);
      void usageAtEnd.finally(() => {
        forceEnd();
        return bounded(DOCKER_DEADLINES.kill, 'kill', (abortSignal) =>
          sandbox.container.kill({ signal: 'SIGKILL', abortSignal }),
        ).catch(() => {});
      });
    };
    const timer = setTimeout(() => end('timed_out'), job.limits.timeoutMs);
    const onAbort = () => end('cancelled');
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });

    try {
      const finished = new Promise<'trailer' | 'closed'>((resolve) => {
        if (sandbox.stream.destroyed || sandbox.stream.readableEnded) resolve('closed');
        sandbox.stream.on('data', (chunk: Buffer) => {
          if (reader.push(chunk)) resolve('trailer');
        });
        sandbox.stream.once('end', () => resolve('closed'));
        sandbox.stream.once('close', () => resolve('closed'));
        sandbox.stream.once('error', () => resolve('closed'));
        // Once the engine has ended the run, it ends, whether or not Docker ever closes the
        // stream (a hung engine): the kill's own deadline plus a little.
        forceEnd = () => setTimeout(() => resolve('closed'), FORCE_END_MS).unref();
      });
      sandbox.stream.resume();
      for (const chunk of input.chunks) sandbox.stream.write(chunk);
      sandbox.stream.end(); // closes the program's stdin (StdinOnce)
      const how = await finished;
      clearTimeout(timer);
      const wallMs = performance.now() - started;
      reader.flush();

      const trailer = ending ? undefined : reader.trailer;
      const exitCode = ending ? undefined : reader.exitCode;
      const usage = await (usageAtEnd ?? readUsage(sandbox.container).catch(() => undefined));
      const stopped =
        how === 'closed' && !ending
          ? (
              await bounded(DOCKER_DEADLINES.inspect, 'inspect', (abortSignal) =>
                sandbox.container.inspect({ abortSignal }),
              ).catch(() => undefined)
            )?.State
          : undefined;
      const verdict = runVerdict({
        ending,
        exitCode,
        oomKills: usage?.oomKills,
        stopped: stopped && { oomKilled: Boolean(stopped.OOMKilled), exitCode: stopped.ExitCode ?? null },
        limits: job.limits,
      });
      const returned = trailer ? collectFiles(trailer, profile, reader) : undefined;
      return withOutput(reader, { ...verdict, ...(returned && { files: returned }) }, usage, wallMs);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      runEnded();
      remove(sandbox, ended);
    }
  }

  return {
    name: 'docker',
    reaper,
    health,
    available,
    run(job, profile: Profile, signal, output) {
      if (profile.engine !== 'docker') throw new Error(`profile ${profile.name} is not a docker profile`);
      return run(job, profile, signal, output);
    },
    onAvailability(listener) {
      health.onChange((state) => listener(state.healthy));
      if (!healthy()) listener(false);
    },
    async check() {
      const state = health.state();
      if (!state.healthy) throw new Error(state.reason ?? 'the Docker Engine is unavailable');
    },
    async close(budgetMs = CLOSE_MS) {
      closed = true;
      health.stop();
      clearInterval(reapTimer);
      // Bounded whatever Docker does: what is not removed by then is left for the reaper (the
      // runner's heartbeat goes next, so the next runner reaps at once).
      let timer: NodeJS.Timeout | undefined;
      const done = (async () => {
        await startup;
        await Promise.all([...pools.values()].map((p) => p.close()));
        await Promise.all(removals);
        // What a failed removal left (Docker was away then): nothing of this process outlives it.
        await reaper.sweepOwn().catch((e: Error) => onError(e, 'close'));
      })();
      const timedOut = await Promise.race([
        done.then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), Math.max(CLOSE_MS, budgetMs)))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        onError(
          new Error(`containers not removed within ${Math.max(CLOSE_MS, budgetMs)} ms are left for the reaper`),
          'close',
        );
      }
    },
  };
}

const NOTHING_RAN: ContainerUsage = { cpuMs: 0, memoryPeakBytes: 0, oomKills: 0 };

/** The run's output and usage around its verdict; usage that could not be read says so. */
function withOutput(
  reader: OutputReader,
  verdict: Verdict & Partial<EngineResult>,
  usage: ContainerUsage | undefined,
  wallMs: number,
): EngineResult {
  return {
    stdout: reader.out.stdout,
    stderr: reader.out.stderr,
    truncated: reader.out.truncated,
    usage: usage
      ? { cpuMs: usage.cpuMs, wallMs, memoryBytes: usage.memoryPeakBytes, measured: true }
      : { cpuMs: 0, wallMs, memoryBytes: 0, measured: false },
    ...verdict,
  };
}

/** The files of out/, with a note on stderr for whatever was left out. */
function collectFiles(trailer: Trailer, profile: DockerProfile, reader: OutputReader): EngineResult['files'] {
  if (trailer.outUnreadable) {
    reader.out.truncated = true;
    reader.out.write(2, '\n[sandgate] the files in out/ could not be read back; none are returned\n');
    return undefined;
  }
  if (!trailer.outTar) return undefined;
  const { files, notes } = outputFiles(trailer.outTar, profile.files);
  if (notes.length) {
    reader.out.truncated = true;
    for (const n of notes) reader.out.write(2, `\n[sandgate] ${n}\n`);
  }
  return files;
}
