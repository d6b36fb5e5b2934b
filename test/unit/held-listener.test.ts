import { describe, expect, it } from 'vitest';
import { HeldListener } from '../../runner/engines/isolate/held-listener.ts';
import type { OutputListener } from '../../runner/engines/output-collector.ts';

const recorder = () => {
  const seen: string[] = [];
  const to: OutputListener = {
    write: (fd, data) => seen.push(`${fd}:${data.toString()}`),
    truncated: () => seen.push('cut'),
  };
  return { seen, to };
};

describe('HeldListener', () => {
  it('holds everything until released, then hands it on in order, then passes straight through', () => {
    const { seen, to } = recorder();
    const held = new HeldListener(to);
    held.write(1, 'a');
    held.write(2, Buffer.from('b'));
    held.truncated();
    expect(seen).toEqual([]);
    held.release();
    expect(seen).toEqual(['1:a', '2:b', 'cut']);
    held.write(1, 'c');
    expect(seen).toEqual(['1:a', '2:b', 'cut', '1:c']);
    held.release(); // a second release hands nothing on twice
    expect(seen).toHaveLength(4);
  });

  it('never released (a thrown-away attempt): nothing is seen', () => {
    const { seen, to } = recorder();
    const held = new HeldListener(to);
    held.write(1, 'a');
    held.truncated();
    expect(seen).toEqual([]);
  });
});
