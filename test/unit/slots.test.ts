// An engine's run slots, shared by the queue worker (waits) and runs taken here (only a free slot).
import { describe, expect, it } from 'vitest';
import { createSlots } from '../../runner/slots.ts';

describe('run slots', () => {
  it('gives at most `size`, and a freed slot to a waiting queue job before a run taken here', async () => {
    const slots = createSlots(2);
    expect(slots.tryTake()).toBe(true);
    await slots.take();
    expect(slots.tryTake()).toBe(false);
    let queued = false;
    const waiting = slots.take().then(() => {
      queued = true;
    });
    slots.give(); // passes straight to the waiting job
    expect(slots.tryTake()).toBe(false);
    await waiting;
    expect(queued).toBe(true);
    expect(slots.inUse()).toBe(2);
    slots.give();
    slots.give();
    expect(slots.inUse()).toBe(0);
    slots.give(); // one give too many never makes room beyond `size`
    expect([slots.tryTake(), slots.tryTake(), slots.tryTake()]).toEqual([true, true, false]);
  });
});
