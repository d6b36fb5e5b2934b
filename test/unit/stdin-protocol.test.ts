// What the engine writes to a sandbox's stdin: the header the supervisor reads, files with
// base64 names, the code, then the program's stdin; and the last-door checks on input files.
import { describe, expect, it } from 'vitest';
import type { ExecutionJob } from '../../contract/execution.ts';
import type { DockerProfile } from '../../contract/profile.ts';
import { encodeInput, InputRejected, outTarLimit } from '../../runner/engines/docker/stdin-protocol.ts';

const profile = {
  name: 'python',
  files: { maxCount: 2, maxBytes: 10, outMaxBytes: 1000, outMaxCount: 5 },
} as DockerProfile;
const job = (extra: Partial<ExecutionJob> = {}): ExecutionJob => ({
  id: 'ex_unitunit01',
  agentId: 'a',
  taskId: null,
  profile: 'python',
  language: 'python',
  code: 'print("é")',
  stdin: '',
  files: [],
  limits: { timeoutMs: 1000, memoryMb: 64, outputBytes: 1024 },
  ...extra,
});

describe('the sandbox stdin protocol', () => {
  it('starts with the header: magic, a fresh nonce, code bytes, file count and the out/ limit', () => {
    const a = encodeInput(job(), profile);
    const b = encodeInput(job(), profile);
    const header = a.chunks[0]!.toString();
    expect(header).toBe(`SANDGATE/2 ${a.nonce} ${Buffer.byteLength('print("é")')} 0 ${outTarLimit(profile.files)}\n`);
    expect(a.nonce).toMatch(/^[0-9a-f]{36}$/);
    expect(a.nonce).not.toBe(b.nonce);
    expect(Buffer.concat(a.chunks.slice(1)).toString()).toBe('print("é")');
  });

  it('sends each file as "<bytes> <base64 path>" then its bytes, decoding base64 content, then code, then stdin', () => {
    const e = encodeInput(
      job({
        stdin: 'in',
        files: [
          { path: 'a b/c.txt', content: 'hi', encoding: 'utf8' },
          { path: 'x', content: Buffer.from([0, 1]).toString('base64'), encoding: 'base64' },
        ],
      }),
      profile,
    );
    expect(e.chunks.slice(1).map((c) => c.toString('latin1'))).toEqual([
      `2 ${Buffer.from('a b/c.txt').toString('base64')}\n`,
      'hi',
      `2 ${Buffer.from('x').toString('base64')}\n`,
      '\u0000\u0001',
      Buffer.from('print("é")').toString('latin1'),
      'in',
    ]);
  });

  it('the out/ limit is the content cap plus the headers of every permitted file', () => {
    expect(outTarLimit(profile.files)).toBe(1000 + 7 * 2048);
  });

  it.each([
    [{ path: '../x', content: 'a', encoding: 'utf8' as const }, /must not contain "\.\."/],
    [{ path: '/etc/passwd', content: 'a', encoding: 'utf8' as const }, /must be relative/],
    [{ path: 'a\nb', content: 'a', encoding: 'utf8' as const }, /control characters/],
    [{ path: 'out', content: 'a', encoding: 'utf8' as const }, /output directory/],
  ])('refuses an input file path at the last door: %j', (file, message) => {
    expect(() => encodeInput(job({ files: [file] }), profile)).toThrow(message);
  });

  it('refuses more files, or more bytes, than the profile takes', () => {
    const f = (path: string, content = 'a') => ({ path, content, encoding: 'utf8' as const });
    expect(() => encodeInput(job({ files: [f('a'), f('b'), f('c')] }), profile)).toThrow(InputRejected);
    expect(() => encodeInput(job({ files: [f('a', '123456'), f('b', '123456')] }), profile)).toThrow(/exceed 10 bytes/);
  });
});
