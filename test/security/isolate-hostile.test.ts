// Hostile programs against the js profile, through the whole REST → queue → isolate path.
// Each must end in its named status, and the service must keep serving afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let auth: Record<string, string>;

beforeAll(async () => {
  sg = await startSandgate();
  ({ auth } = await sg.agent({ profiles: ['js'] }));
});
afterAll(() => sg?.stop());

async function run(code: string, limits: { timeoutMs?: number; memoryMb?: number } = {}) {
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/executions?wait=true',
    headers: auth,
    payload: { profile: 'js', code, timeoutMs: 1000, ...limits },
  });
  expect(res.statusCode).toBe(200);
  return res.json();
}

describe('hostile programs in the isolate', () => {
  it('infinite loop → timed_out at the deadline', async () => {
    const r = await run('while (true) {}');
    expect(r.status).toBe('timed_out');
    expect(r.error.code).toBe('timed_out');
    expect(r.usage.wallMs).toBeLessThan(3000);
  });

  it('async infinite loop that escapes the script → timed_out (watchdog)', async () => {
    const r = await run('(async () => { await null; while (true) {} })(); "returned"');
    expect(r.status).toBe('timed_out');
    expect(r.usage.wallMs).toBeLessThan(3000);
  });

  it('microtask loop that never yields to the host → timed_out', async () => {
    const r = await run('(async function spin() { for (;;) await null; })(); 1');
    expect(r.status).toBe('timed_out');
  });

  it('promise that never settles → timed_out', async () => {
    const r = await run('new Promise(() => {})');
    expect(r.status).toBe('timed_out');
  });

  it('memory bomb → memory_exceeded', async () => {
    const r = await run('const a = []; while (true) a.push("x".repeat(1 << 16) + Math.random());', {
      memoryMb: 16,
      timeoutMs: 5000,
    });
    expect(r.status).toBe('memory_exceeded');
    expect(r.error.code).toBe('memory_exceeded');
    expect(r.usage.memoryBytes).toBeGreaterThanOrEqual(16 * 1024 * 1024);
  });

  it('ArrayBuffer bomb → memory_exceeded', async () => {
    const r = await run('const k = []; for (;;) k.push(new ArrayBuffer(8 << 20));', { memoryMb: 16, timeoutMs: 5000 });
    expect(r.status).toBe('memory_exceeded');
  });

  it('output flood → cut at the profile cap, truncated: true', async () => {
    const r = await run('for (let i = 0; i < 1e6; i++) console.log("flood ".repeat(50)); "done"', { timeoutMs: 5000 });
    expect(['succeeded', 'timed_out']).toContain(r.status);
    expect(r.truncated).toBe(true);
    expect(Buffer.byteLength(r.stdout) + Buffer.byteLength(r.stderr)).toBeLessThanOrEqual(65536);
  });

  it('one huge line → cut at the cap', async () => {
    const r = await run('console.log("y".repeat(10 * 1024 * 1024)); 1', { memoryMb: 64 });
    expect(r.truncated).toBe(true);
    expect(Buffer.byteLength(r.stdout)).toBeLessThanOrEqual(65536);
  });

  it("this.constructor.constructor('return process')() finds no process → failed", async () => {
    const r = await run("this.constructor.constructor('return process')().exit(1)");
    expect(r.status).toBe('failed');
    expect(r.error.message).toBe('ReferenceError: process is not defined');
  });

  it.each([
    ['require', 'require("fs").readFileSync("/etc/passwd", "utf8")', 'ReferenceError: require is not defined'],
    ['fetch', 'fetch("http://1.1.1.1/")', 'ReferenceError: fetch is not defined'],
    ['setTimeout', 'setTimeout(() => {}, 10)', 'ReferenceError: setTimeout is not defined'],
    ['dynamic import', 'import("fs")', 'Not supported'],
    ['WebAssembly', 'WebAssembly.compile(new Uint8Array([0]))', 'ReferenceError: WebAssembly is not defined'],
  ])('%s is not there → failed', async (_name, code, message) => {
    const r = await run(code);
    expect(r.status).toBe('failed');
    expect(r.error.message).toContain(message);
  });

  it('host stack frames do not leak into stderr', async () => {
    const r = await run('throw new Error("where am I")');
    expect(r.stderr).toContain('where am I');
    expect(r.stderr).not.toMatch(/node_modules|isolate-engine|\/work\//);
  });

  it('a completion value with a hostile toJSON cannot hang the runner', async () => {
    const r = await run('({ toJSON() { while (true) {} } })');
    expect(r.status).toBe('timed_out');
  });

  it('a function as completion value is dropped with a note, not an error', async () => {
    const r = await run('(() => 1)');
    expect(r.status).toBe('succeeded');
    expect(r.result).toBeUndefined();
    expect(r.stderr).toContain('not JSON-serializable');
  });

  it('the service still serves after all of that', async () => {
    const r = await run('console.log(6*7); 1+1');
    expect(r).toMatchObject({ status: 'succeeded', stdout: '42\n', result: 2 });
  });
});
