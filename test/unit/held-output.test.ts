// The output of a run started ahead of its admission's end: nothing goes out before the yes, all
// of it in order after it, none of it after a no.
import { describe, expect, it } from 'vitest';
import { heldOutput } from '../../runner/engines/held-output.ts';
import type { OutputPublisher } from '../../state/event-streams.ts';
import { admissionDecision } from '../helpers/admission-decision.ts';

const recording = () => {
  const sent: string[] = [];
  const out: OutputPublisher = {
    write: (fd, data) => sent.push(`${fd}:${String(data)}`),
    truncated: () => sent.push('truncated'),
    close: () => sent.push('close'),
  };
  return { sent, out };
};

describe('held output', () => {
  it('holds what comes before the yes and sends it all, in order, once it comes', async () => {
    const { sent, out } = recording();
    const { admitted, say } = admissionDecision();
    const held = heldOutput(out, admitted);
    held.write(1, 'a');
    held.write(2, 'b');
    held.truncated();
    await Promise.resolve();
    expect(sent).toEqual([]);
    say(true);
    held.write(1, 'c'); // between the yes and its callback: still after a and b
    await admitted;
    held.write(1, 'd');
    held.close();
    expect(sent).toEqual(['1:a', '2:b', 'truncated', '1:c', '1:d', 'close']);
  });

  it('sends nothing at all after a no', async () => {
    const { sent, out } = recording();
    const { admitted, say } = admissionDecision();
    const held = heldOutput(out, admitted);
    held.write(1, 'a');
    say(false);
    await admitted;
    held.write(1, 'b');
    held.close();
    expect(sent).toEqual([]);
  });
});
