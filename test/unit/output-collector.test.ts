import { describe, expect, it } from 'vitest';
import { OutputCollector } from '../../runner/engines/output-collector.ts';

describe('OutputCollector', () => {
  it('keeps stdout and stderr apart under one cap', () => {
    const out = new OutputCollector(10);
    expect(out.write(1, 'abc')).toBe(true);
    expect(out.write(2, 'de')).toBe(true);
    expect(out.stdout).toBe('abc');
    expect(out.stderr).toBe('de');
    expect(out.truncated).toBe(false);
  });

  it('cuts at the cap, says so, and refuses more', () => {
    const out = new OutputCollector(5);
    expect(out.write(1, 'abcdefgh')).toBe(false);
    expect(out.stdout).toBe('abcde');
    expect(out.truncated).toBe(true);
    expect(out.write(2, 'x')).toBe(false);
    expect(out.stderr).toBe('');
  });

  it('counts bytes, not characters', () => {
    const out = new OutputCollector(4);
    out.write(1, 'éé'); // 4 bytes
    expect(out.truncated).toBe(false);
    out.write(1, 'é');
    expect(out.truncated).toBe(true);
  });
});
