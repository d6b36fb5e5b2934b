// The Docker engine: the only importer of dockerode. One container, one run: a run takes a
// started container from its profile's pool (or starts one), writes the program to its stdin,
// reads capped output until the entrypoint's trailer, reads usage from the cgroup, and removes
// the container, always. Timeouts and cancels kill the container.
import Dockerode from 'dockerode';
import type { EngineResult, ExecutionJob } from '../../../contract/execution.ts';
import type { DockerProfile, Profile } from '../../../contract/profile.ts';
import type { Engine } from '../engine.ts';
import { ContainerPool, type Sandbox } from './container-pool.ts';
import { containerSpec } from './container-spec.ts';
import { type ContainerUsage, createUsageReader } from './container-usage.ts';
import { OutputReader } from './output-reader.ts';
import { createReaper, type Reaper } from './reaper.ts';
import { encodeInput, InputRejected } from './stdin-protocol.ts';
import { readTar } from './tar-reader.ts';

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
      return result({ status: 'failed', exitCode: null, error: { code: 'input_rejected', message: e.message } }, undefined, 0);
    }
    const started = performance.now();
    const sandbox =
      job.limits.memoryMb === profile.limits.memoryMb
        ? await poolFor(profile).take()
        : await new ContainerPool({ docker, spec: specFor(profile, job.limits.memoryMb), size: 0, track: (id) => live.add(id), onError: (e) => onError(e, 'cold start') }).take();
    const reader = new OutputReader(input.nonce, job.limits.outputBytes, profile.files.outMaxBytes);
    let ending: Ending | undefined;
    const end = (why: Ending) => {
      if (ending) return;
      ending = why;
      sandbox.container.kill({ signal: 'SIGKILL' }).catch(() => {});
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

      if (ending) {
        const usage = await readUsage(sandbox.container).catch(() => undefined);
        const message = ending === 'timed_out' ? `the run passed its ${job.limits.timeoutMs} ms wall-clock limit` : 'the run was cancelled';
        return result({ status: ending, exitCode: null, error: { code: ending, message } }, usage, wallMs);
      }
      if (how === 'trailer') {
        const usage = await readUsage(sandbox.container).catch(() => undefined);
        const { exitCode, outTarBase64 } = reader.trailer!;
        const files = outputFiles(outTarBase64, profile.files.outMaxBytes);
        if (reader.trailerTooLarge || files.dropped) {
          reader.out.truncated = true;
          reader.out.write(2, `\n[sandgate] files in out/ exceed ${profile.files.outMaxBytes} bytes; some were dropped\n`);
        }
        const oom = (usage?.oomKills ?? 0) > 0 && exitCode !== 0;
        if (oom) {
          return result({ status: 'memory_exceeded', exitCode, error: { code: 'memory_exceeded', message: `the run passed its ${job.limits.memoryMb} MB memory limit` }, files: files.files }, usage, wallMs);
        }
        return result(
          exitCode === 0
            ? { status: 'succeeded', exitCode, files: files.files }
            : { status: 'failed', exitCode, error: { code: 'nonzero_exit', message: `the program exited with code ${exitCode}` }, files: files.files },
          usage,
          wallMs,
        );
      }
      // The container ended before its entrypoint could report: find out why.
      const state = (await sandbox.container.inspect().catch(() => undefined))?.State;
      if (state?.OOMKilled) {
        return result({ status: 'memory_exceeded', exitCode: state.ExitCode ?? null, error: { code: 'memory_exceeded', message: `the run passed its ${job.limits.memoryMb} MB memory limit` } }, undefined, wallMs);
      }
      return result({ status: 'failed', exitCode: state?.ExitCode ?? null, error: { code: 'sandbox_died', message: 'the sandbox container stopped before the program finished' } }, undefined, wallMs);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      remove(sandbox);
    }

    function result(partial: Pick<EngineResult, 'status' | 'exitCode'> & Partial<EngineResult>, usage: ContainerUsage | undefined, wallMs: number): EngineResult {
      return {
        stdout: reader.out.stdout,
        stderr: reader.out.stderr,
        truncated: reader.out.truncated,
        usage: { cpuMs: usage?.cpuMs ?? 0, wallMs, memoryBytes: usage?.memoryPeakBytes ?? 0 },
        ...partial,
      };
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

function outputFiles(tarBase64: string | undefined, maxBytes: number): { files: EngineResult['files']; dropped: boolean } {
  if (!tarBase64) return { files: undefined, dropped: false };
  const files: NonNullable<EngineResult['files']> = [];
  let total = 0;
  let dropped = false;
  for (const f of readTar(Buffer.from(tarBase64, 'base64'))) {
    total += f.data.length;
    if (total > maxBytes) {
      dropped = true;
      continue;
    }
    const text = new TextDecoder('utf-8', { fatal: true });
    let content: string;
    let encoding: 'utf8' | 'base64' = 'utf8';
    try {
      content = text.decode(f.data);
    } catch {
      content = f.data.toString('base64');
      encoding = 'base64';
    }
    files.push({ path: f.path, content, encoding });
  }
  return { files, dropped };
}
