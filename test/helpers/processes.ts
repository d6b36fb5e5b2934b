// Real processes for the tests that are about processes: crashes, signals, a Redis that dies.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  srv.close();
  return port;
}

export interface Child {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** What says the process failed: its fatal log lines, a death by a crash signal. */
  faults: () => string[];
}

export interface SpawnOptions {
  /** Node options before the script, e.g. `--import` of a fixture. */
  nodeArgs?: string[];
  /**
   * The child's log level: `info` (tests wait for its lines) unless asked otherwise; a benchmark
   * asks for the user's default so it measures what a user gets.
   */
  logLevel?: string;
}

// A fatal line (pino level 60: an unhandled rejection, an uncaught exception, a failed start) or
// a native crash of a spawned process is a failure of the test that spawned it, even when the
// test never looks: test/helpers/child-faults.ts checks these after every test.
const OUTPUT_KEEP = 1 << 20;
const CRASH_SIGNALS = new Set(['SIGABRT', 'SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE']);
const watched = new Map<Child, number>(); // child → faults already reported
const closed = new WeakSet<Child>(); // exited and its output fully read

export function spawnSandgate(
  mode: 'all' | 'api' | 'runner',
  env: Record<string, string>,
  opts: SpawnOptions = {},
): Child {
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), 'bin/sandgate.ts', mode], {
    env: { ...process.env, ...env, SANDGATE_LOG_LEVEL: opts.logLevel ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The output is kept to its last OUTPUT_KEEP characters (a long run must not grow the test's
  // memory, nor cost its thread time), its fatal lines in full.
  let output = '';
  let partial = '';
  const fatal: string[] = [];
  const take = (d: Buffer) => {
    const text = d.toString();
    output += text;
    if (output.length > 2 * OUTPUT_KEEP) output = output.slice(-OUTPUT_KEEP);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (l.includes('"level":60')) fatal.push(l);
  };
  proc.stdout!.on('data', take);
  proc.stderr!.on('data', take);
  const exited = once(proc, 'exit').then(([code]) => code as number | null);
  const faults = () => {
    const lines = [...fatal, ...(partial.includes('"level":60') ? [partial] : [])];
    if (proc.signalCode && CRASH_SIGNALS.has(proc.signalCode)) lines.push(`died of ${proc.signalCode}`);
    return lines.map((l) => `${mode} pid ${proc.pid}: ${l}`);
  };
  const child = { proc, output: () => output, exited, faults };
  watched.set(child, 0);
  proc.once('close', () => closed.add(child));
  return child;
}

/** Faults of spawned processes not reported before; forgets children that have exited. */
export function takeChildFaults(): string[] {
  const found: string[] = [];
  for (const [child, reported] of watched) {
    const all = child.faults();
    found.push(...all.slice(reported));
    if (closed.has(child)) watched.delete(child);
    else watched.set(child, all.length);
  }
  return found;
}

export async function waitForOutput(child: Child, pattern: RegExp, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!pattern.test(child.output())) {
    if (Date.now() > until || child.proc.exitCode !== null) {
      throw new Error(`no ${pattern} in the output:\n${child.output()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A throw-away redis-server on its own port, for tests that stop it. With `persistDir` every write
 * is fsynced to an append-only file there, so `restart()` brings back exactly what was written.
 */
export async function startRedis(
  opts: { persistDir?: string } = {},
): Promise<{ url: string; stop: () => Promise<void>; restart: () => Promise<void> }> {
  const port = await freePort();
  const persistence = opts.persistDir
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', opts.persistDir]
    : ['--appendonly', 'no'];
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess;
  const start = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], {
      stdio: 'ignore',
    });
    const { Redis } = await import('ioredis');
    for (let i = 0; ; i++) {
      const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
      probe.on('error', () => {});
      try {
        await probe.connect();
        await probe.ping();
        break;
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        probe.disconnect();
      }
    }
  };
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await once(proc, 'exit');
    }
  };
  await start();
  return { url, stop, restart: start };
}
