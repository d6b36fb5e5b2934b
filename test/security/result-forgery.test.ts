// The sandbox cannot write its own verdict. Programs that hunt for the run's nonce wherever
// they can look (/proc of every process, ptrace, process_vm_readv, their own stdin), print every
// candidate as a forged "success" trailer and then exit 9: the result is always their true exit
// status. Under runc and under gVisor alike.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containersOf, hasRuntime } from '../helpers/docker.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let auth: Record<string, string>;
const gvisor = await hasRuntime('runsc');
const pythons = gvisor ? (['python', 'python-gvisor'] as const) : (['python'] as const);

beforeAll(async () => {
  sg = await startSandgate({}, 'all', ['python', 'shell', 'node', ...(gvisor ? ['python-gvisor'] : [])]);
  ({ auth } = await sg.agent({ profiles: ['python', 'shell', 'node', 'python-gvisor'] }));
});
afterAll(async () => {
  const prefix = sg.config.SANDGATE_PREFIX;
  await sg?.stop();
  expect(await containersOf(prefix)).toEqual([]);
});

async function run(profile: string, code: string, extra: Record<string, unknown> = {}) {
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/executions?wait=true',
    headers: auth,
    payload: { profile, code, timeoutMs: 8000, ...extra },
  });
  expect(res.statusCode).toBe(200);
  return res.json();
}

// Collects every hex run of 16+ characters it can read anywhere and forges a trailer with each.
const HUNT = String.raw`
import ctypes, os, re, sys
found = set()
def grab(data):
    for m in re.findall(rb"[0-9a-f]{16,}", data):
        found.add(m.decode())
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    for name in ["cmdline", "environ", "maps", "status", "stat", "comm", "io", "stack", "syscall", "wchan"]:
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f: grab(f.read())
        except Exception: pass
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                with open(f"/proc/{pid}/fd/{fd}", "rb") as f: grab(f.read(65536))
            except Exception: pass
    except Exception: pass
    try:
        with open(f"/proc/{pid}/mem", "rb") as f: grab(f.read(4096))
    except Exception: pass
try: grab(sys.stdin.buffer.read())
except Exception: pass
for tok in sorted(found) + ["0" * 36, "SANDGATE"]:
    sys.stdout.write(f"\n{tok} exit 0\n{tok} end\n")
    sys.stderr.write(f"\n{tok} end\n")
sys.stdout.write(f"\nfound {len(found)} candidates\n")
sys.stdout.flush()
sys.exit(9)
`;

const PTRACE = String.raw`
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
results = []
for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
    if pid == os.getpid(): continue
    r = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    results.append(f"attach {pid} -> {r} {os.strerror(ctypes.get_errno())}")
    r = libc.ptrace(0x4206, pid, None, None)  # PTRACE_SEIZE
    results.append(f"seize {pid} -> {r}")
    buf = ctypes.create_string_buffer(4096)
    local = iovec(ctypes.cast(buf, ctypes.c_void_p), 4096)
    remote = iovec(ctypes.c_void_p(0x400000), 4096)
    n = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    results.append(f"vm_readv {pid} -> {n}")
    try: os.kill(pid, 19)  # SIGSTOP the supervisor, if it could
    except Exception as e: results.append(f"kill {pid} -> {e}")
print("\n".join(results))
sys.stdout.write("\nSANDGATE exit 0\nSANDGATE end\n")
sys.exit(9)
`;

describe('a program hunting for the trailer nonce', () => {
  it.each(pythons)(
    'reads every /proc file, fd and its own stdin, forges a trailer with each candidate, exits 9 (%s)',
    async (profile) => {
      const r = await run(profile, HUNT, { stdin: 'the program stdin' });
      expect(r.status).toBe('failed');
      expect(r.exitCode).toBe(9);
      expect(r.stdout).toMatch(/found \d+ candidates/);
    },
  );

  it.each(pythons)(
    'ptrace, PTRACE_SEIZE and process_vm_readv of every process fail, SIGSTOP of PID 1 is refused (%s)',
    async (profile) => {
      const r = await run(profile, PTRACE);
      expect(r.status).toBe('failed');
      expect(r.exitCode).toBe(9);
      expect(r.stdout).toMatch(/attach 1 -> -1/);
      expect(r.stdout).toMatch(/vm_readv 1 -> -1/);
      expect(r.stdout).not.toMatch(/attach 1 -> 0/);
    },
  );

  it.each([
    ['shell', 'printf "\\nabc exit 0\\nabc end\\n"; printf "\\nabc end\\n" >&2; exit 9'],
    ['shell', 'for i in $(seq 100); do printf "\\n%036d exit 0\\n%036d end\\n" $i $i; done; exit 9'],
    [
      'node',
      'process.stdout.write("\\nSANDGATE/1 exit 0\\n"); process.stdout.write("x exit 0\\nx end\\n"); process.exitCode = 9;',
    ],
    ['python', 'import os\nos.write(1, b"\\n" + b"f" * 36 + b" exit 0\\n" + b"f" * 36 + b" end\\n")\nos._exit(9)'],
  ])('prints a forged "success" and exits 9: failed with 9 (%s)', async (profile, code) => {
    const r = await run(profile, code);
    expect(r).toMatchObject({ status: 'failed', exitCode: 9 });
  });

  it('kills itself with a signal after a forged success: the signal is its status', async () => {
    const r = await run('shell', 'printf "\\nx exit 0\\nx end\\n"; kill -KILL $$');
    expect(r).toMatchObject({ status: 'failed', exitCode: 137 });
  });

  it('a background child that writes forged trailers after the program exits changes nothing', async () => {
    const r = await run('shell', '( for i in $(seq 2000); do printf "\\nz exit 0\\nz end\\n"; done ) & exit 9');
    expect(r).toMatchObject({ status: 'failed', exitCode: 9 });
  });

  it('closing its stdout and stderr early still leaves the true status', async () => {
    const r = await run('python', 'import os\nos.close(1)\nos.close(2)\nos._exit(9)');
    expect(r).toMatchObject({ status: 'failed', exitCode: 9 });
  });

  it('an honest program still succeeds with its output', async () => {
    expect(await run('python', 'print("ok")')).toMatchObject({ status: 'succeeded', exitCode: 0, stdout: 'ok\n' });
  });
});

describe('returned file names', () => {
  it.each(pythons)(
    'names no engine would accept never come back; safe ones and hard links do (%s)',
    async (profile) => {
      const code = String.raw`
import os
os.makedirs("out/d", exist_ok=True)
open("out/ok.txt", "w").write("ok")
for name in ["a\nb", "..\\..\\etc\\x", "C:x", "tab\there", "bell\x07", "c1\u0085"]:
    open("out/" + name, "w").write("evil")
os.symlink("/etc/passwd", "out/passwd-link")
os.symlink("../..", "out/up")
os.link("out/ok.txt", "out/hard")
os.mkfifo("out/fifo")
exit(3)
`;
      const r = await run(profile, code);
      expect(r).toMatchObject({ status: 'failed', exitCode: 3 });
      const paths: string[] = (r.files ?? []).map((f: { path: string }) => f.path).sort();
      expect(paths).toEqual(['hard', 'ok.txt']); // a hard link is the same file under a second name
      expect(r.stderr).toMatch(/refused \d+ returned path/);
    },
  );

  it("out/ replaced by a symlink to / returns nothing outside the sandbox user's reach and keeps the status", async () => {
    const r = await run('shell', 'rm -rf out && ln -s / out; exit 4');
    expect(r).toMatchObject({ status: 'failed', exitCode: 4 });
    for (const f of r.files ?? []) expect(f.path).not.toMatch(/^(\/|\.\.)/);
  });
});
