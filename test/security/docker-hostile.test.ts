// Hostile programs in the Docker profiles, through the whole REST → queue → container path.
// Each ends in its expected status; afterwards no container of this instance is left.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containersOf } from '../helpers/docker.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let auth: Record<string, string>;

beforeAll(async () => {
  sg = await startSandgate({}, 'all', ['python', 'shell']);
  ({ auth } = await sg.agent({ profiles: ['python', 'shell'] }));
});
afterAll(async () => {
  const prefix = sg.config.SANDGATE_PREFIX;
  await sg?.stop();
  expect(await containersOf(prefix)).toEqual([]);
});

async function run(profile: 'python' | 'shell', code: string, limits: { timeoutMs?: number; memoryMb?: number } = {}) {
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/executions?wait=true',
    headers: auth,
    payload: { profile, code, timeoutMs: 5000, ...limits },
  });
  expect(res.statusCode).toBe(200);
  return res.json();
}

const py = (lines: string[]) => lines.join('\n');

describe('hostile programs in containers', () => {
  it('has no network: a socket to 1.1.1.1 fails', async () => {
    const r = await run(
      'python',
      py([
        'import socket',
        's = socket.socket()',
        's.settimeout(2)',
        's.connect(("1.1.1.1", 53))',
        'print("connected")',
      ]),
    );
    expect(r.status).toBe('failed');
    expect(r.stdout).not.toContain('connected');
    expect(r.stderr).toMatch(/Network is unreachable|OSError/);
  });

  it('has no DNS', async () => {
    const r = await run('python', py(['import socket', 'print(socket.getaddrinfo("example.com", 80))']));
    expect(r.status).toBe('failed');
    expect(r.stderr).toMatch(/gaierror|Temporary failure in name resolution|Name or service not known/);
  });

  it('has only the loopback interface', async () => {
    const r = await run('shell', 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "');
    expect(r.stdout.trim().split('\n')).toEqual(['lo']);
  });

  it('fork bomb → stopped by the pids limit, failed', async () => {
    const r = await run('python', py(['import os', 'while True:', '    os.fork()']), { timeoutMs: 5000 });
    expect(r.status).toBe('failed');
    expect(r.stderr).toMatch(/Resource temporarily unavailable|BlockingIOError/);
  });

  it('memory bomb → memory_exceeded', async () => {
    const r = await run('python', py(['a = []', 'while True:', '    a.append(bytearray(16 * 1024 * 1024))']), {
      memoryMb: 64,
    });
    expect(r.status).toBe('memory_exceeded');
    expect(r.error.code).toBe('memory_exceeded');
  });

  it('disk fill of the work dir → the write fails, failed', async () => {
    const r = await run(
      'python',
      py(['with open("fill", "wb") as f:', '    while True:', '        f.write(b"x" * 1048576)']),
    );
    expect(r.status).toBe('failed');
    expect(r.stderr).toMatch(/No space left on device|File too large/);
  });

  it('output flood → cut at the cap while streaming, truncated', async () => {
    const r = await run(
      'python',
      py(['import sys', 'line = "flood " * 1000 + "\\n"', 'while True:', '    sys.stdout.write(line)']),
      { timeoutMs: 2000 },
    );
    expect(r.status).toBe('timed_out');
    expect(r.truncated).toBe(true);
    expect(Buffer.byteLength(r.stdout) + Buffer.byteLength(r.stderr)).toBeLessThanOrEqual(1024 * 1024);
  });

  it('sleep past the timeout → timed_out near the deadline', async () => {
    const r = await run('python', 'import time; print("start", flush=True); time.sleep(60)', { timeoutMs: 1000 });
    expect(r.status).toBe('timed_out');
    expect(r.stdout).toBe('start\n');
    expect(r.usage.wallMs).toBeLessThan(5000);
  });

  it('cannot read host files or secrets from the environment', async () => {
    const r = await run(
      'python',
      py([
        'import os, json',
        'print(json.dumps(dict(os.environ)))',
        'print(os.path.exists("/var/run/docker.sock"), os.path.exists("/run/docker.sock"))',
        'try:',
        '    print(open("/proc/1/environ", "rb").read())',
        'except PermissionError as e:',
        '    print("denied")',
      ]),
    );
    expect(r.status).toBe('succeeded');
    const env = JSON.parse(r.stdout.split('\n')[0]);
    expect(Object.keys(env).sort()).toEqual(
      expect.not.arrayContaining(['REDIS_URL', 'SANDGATE_ADMIN_TOKEN', 'SANDGATE_PREFIX']),
    );
    expect(r.stdout).not.toContain(sg.config.SANDGATE_ADMIN_TOKEN!);
    expect(r.stdout).not.toContain(sg.config.SANDGATE_PREFIX);
    expect(r.stdout.split('\n')[1]).toBe('False False');
  });

  it('runs unprivileged: uid 10001, no capabilities, no new privileges', async () => {
    const r = await run('shell', 'id -u; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status');
    expect(r.stdout).toMatch(/^10001\n/);
    expect(r.stdout).toMatch(/CapEff:\s+0+\n/);
    expect(r.stdout).toMatch(/NoNewPrivs:\s+1/);
  });

  it('cannot write outside the work dir', async () => {
    const r = await run(
      'shell',
      'for p in /etc/x /usr/x /x /home/x; do (echo hi > "$p") 2>/dev/null && echo "wrote $p"; done; echo checked',
    );
    expect(r.status).toBe('succeeded');
    expect(r.stdout).toBe('checked\n');
  });

  it('cannot execute from /tmp (noexec)', async () => {
    const r = await run('shell', 'cp /bin/true /tmp/t && /tmp/t && echo ran');
    expect(r.stdout).not.toContain('ran');
  });

  it('a background process does not outlive the program', async () => {
    const r = await run('shell', '(sleep 20; echo late) & echo done');
    expect(r.status).toBe('succeeded');
    expect(r.stdout).toBe('done\n');
    expect(r.usage.wallMs).toBeLessThan(5000);
  });

  it('the service still runs programs after all of that', async () => {
    expect(await run('python', 'print(1)')).toMatchObject({ status: 'succeeded', stdout: '1\n' });
  });
});
