// The Docker engine: the only importer of dockerode. One container, one run: a run takes a
// started container from its profile's pool (or starts one), writes the program to its stdin,
// reads capped output until the supervisor's trailer (exit status, then the files of out/),
// reads usage and OOM kills from the cgroup, and removes the container, always. Timeouts and
// cancels read the usage, then kill the container. Nothing the program writes decides the
// verdict (run-verdict.ts): see images/entrypoint.sh for why it cannot reach the supervisor.
import Dockerode from 'dockerode';
import type { EngineResult, ExecutionJob } from '../../../contract/execution.ts';
import type { DockerProfile, Profile } from '../../../contract/profile.ts';
import type { Engine } from '../engine.ts';
import { ContainerPool, type Sandbox } from './container-pool.ts';
import { containerSpec } from './container-spec.ts';
import { type ContainerUsage, createUsageReader } from './container-usage.ts';
import { outputFiles } from './output-files.ts';
import { OutputReader, type Trailer } from './output-reader.ts';
import { createReaper, type Reaper } from './reaper.ts';
import { encodeInput, InputRejected } from './stdin-protocol.ts';
import { runVerdict, type Verdict } from './run-verdict.ts';

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
  onError?: (e: Error, what: string) => void;
}

export interface DockerEngine extends Engine {
  /** Profiles whose runtime this Docker engine has (runsc may be missing). */
  available(): Promise<Set<string>>;
  reaper: Reaper;
}

type Ending = 'timed_out' | 'cancelled';

export function createDockerEngine(opts: DockerEngineOptions): DockerEngine {
  const docker = new Dockerode({ socketPath: opts.socketPath ?? '/var/run/docker.sock' });
  const onError = opts.onError ?? (() => {});
  const readUsage = createUsageReader();
  const live = new Set<string>(); // containers this process owns: pooled, running, being removed
  const removals = new Set<Promise<unknown>>();
  const pools = new Map<string, ContainerPool>();
  let runtimes: Promise<Set<string>> | undefined;

  const remove = (sandbox: Sandbox) => {
    sandbox.stream.destroy();
    const p = sandbox.container
      .remove({ force: true })
      .catch((e: Error) => onError(e, 'remove'))
      .finally(() => {
        live.delete(sandbox.container.id);
        removals.delete(p);
      });
    removals.add(p);
  };

  const specFor = (profile: DockerProfile, memoryMb: number) =>
    containerSpec({ profile, memoryMb, prefix: opts.prefix, owner: opts.owner });

  const poolFor = (profile: DockerProfile): ContainerPool => {
    let pool = pools.get(profile.name);
    if (!pool) {
      pool = new ContainerPool({
        docker,
        spec: specFor(profile, profile.limits.memoryMb),
        size: profile.pool,
        track: (id) => live.add(id),
        onError: (e) => onError(e, `pool ${profile.name}`),
      });
      pools.set(profile.name, pool);
    }
    return pool;
  };

  const available = async (): Promise<Set<string>> => {
    runtimes ??= docker.info().then((info: { Runtimes?: Record<string, unknown> }) => new Set(Object.keys(info.Runtimes ?? {})));
    const have = await runtimes.catch((e) => {
      runtimes = undefined;
      throw e;
    });
    return new Set(opts.profiles.filter((p) => have.has(p.runtime)).map((p) => p.name));
  };

  const reaper = createReaper({
    docker,
    prefix: opts.prefix,
    owner: opts.owner,
    isLive: (id) => live.has(id),
    isOwnerAlive: opts.isOwnerAlive,
    onError: (e) => onError(e, 'reaper'),
  });
  const reapTimer = setInterval(() => void reaper.sweep(), opts.reapIntervalMs ?? 60_000);
  reapTimer.unref();

  // Start-up: clear what crashed runs left behind, then warm the pools of available profiles.
  let closed = false;
  const startup = reaper
    .sweep()
    .then(available)
    .then((names) => {
      for (const p of opts.profiles) if (names.has(p.name) && !closed) poolFor(p).fill();
    })
    .catch((e) => onError(e, 'start-up'));

  async function run(job: ExecutionJob, profile: DockerProfile, signal: AbortSignal): Promise<EngineResult> {
    let input: ReturnType<typeof encodeInput>;
    try {
      input = encodeInput(job, profile);
    } catch (e) {
      if (!(e instanceof InputRejected)) throw e;
      // Nothing ran: measured, and zero.
      const reader = new OutputReader('-', job.limits.outputBytes, 0);
      return withOutput(reader, { status: 'failed', exitCode: null, error: { code: 'input_rejected', message: e.message } }, NOTHING_RAN, 0);
    }
    const started = performance.now();
    const sandbox =
      job.limits.memoryMb === profile.limits.memoryMb
        ? await poolFor(profile).take()
        : await new ContainerPool({ docker, spec: specFor(profile, job.limits.memoryMb), size: 0, track: (id) => live.add(id), onError: (e) => onError(e, 'cold start') }).take();
    const reader = new OutputReader(input.nonce, job.limits.outputBytes, input.outLimit);
    let ending: Ending | undefined;
    let usageAtEnd: Promise<ContainerUsage | undefined> | undefined;
    const end = (why: Ending) => {
      if (ending) return;
      ending = why;
      // Usage first: the cgroup goes with the container, and a run that was stopped is billed
      // for what it used up to here, like any other.
      usageAtEnd = readUsage(sandbox.container).catch(() => undefined);
      void usageAtEnd.finally(() => sandbox.container.kill({ signal: 'SIGKILL' }).catch(() => {}));
    };
    const timer = setTimeout(() => end('timed_out'), job.limits.timeoutMs);
    const onAbort = () => end('cancelled');
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });

    try {
      const finished = new Promise<'trailer' | 'closed'>((resolve) => {
        sandbox.stream.on('data', (chunk: Buffer) => {
          if (reader.push(chunk)) resolve('trailer');
        });
        sandbox.stream.once('end', () => resolve('closed'));
        sandbox.stream.once('close', () => resolve('closed'));
        sandbox.stream.once('error', () => resolve('closed'));
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
        how === 'closed' && !ending ? (await sandbox.container.inspect().catch(() => undefined))?.State : undefined;
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
      remove(sandbox);
    }
  }

  return {
    name: 'docker',
    reaper,
    available,
    run(job, profile: Profile, signal) {
      if (profile.engine !== 'docker') throw new Error(`profile ${profile.name} is not a docker profile`);
      return run(job, profile, signal);
    },
    async check() {
      await docker.ping();
    },
    async close() {
      closed = true;
      clearInterval(reapTimer);
      await startup;
      await Promise.all([...pools.values()].map((p) => p.close()));
      await Promise.all(removals);
    },
  };
}

const NOTHING_RAN: ContainerUsage = { cpuMs: 0, memoryPeakBytes: 0, oomKills: 0 };

/** The run's output and usage around its verdict; usage that could not be read says so. */
function withOutput(reader: OutputReader, verdict: Verdict & Partial<EngineResult>, usage: ContainerUsage | undefined, wallMs: number): EngineResult {
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
