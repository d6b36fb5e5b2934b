// An engine's run slots, shared by the queue worker (waits) and runs taken here (a free slot, or a
// short wait behind a short line).
import { describe, expect, it } from 'vitest';
import { createSlots } from '../../runner/slots.ts';

describe('run slots', () => {
  it('gives at most `size`, and a freed slot to a waiting queue job before a run taken here', async () => {
    const slots = createSlots(2);
    const now = () => slots.takeWithin(0); // a slot now or none, without waiting
    expect(await now()).toBe(true);
    await slots.take();
    expect(await now()).toBe(false);
    let queued = false;
    const waiting = slots.take().then(() => {
      queued = true;
    });
    slots.give(); // passes straight to the waiting job
    expect(await now()).toBe(false);
    await waiting;
    expect(queued).toBe(true);
    expect(slots.inUse()).toBe(2);
    slots.give();
    slots.give();
    expect(slots.inUse()).toBe(0);
    slots.give(); // one give too many never makes room beyond `size`
    expect([await now(), await now(), await now()]).toEqual([true, true, false]);
  });

  it('a run taken here waits briefly behind a short line, first come first served, and takes nothing when it gives up', async () => {
    const slots = createSlots(2);
    expect(await slots.takeWithin(10)).toBe(true);
    expect(await slots.takeWithin(10)).toBe(true);
    // Busy, and nobody frees one in time: false, and no slot is held by the one that gave up.
    expect(await slots.takeWithin(20)).toBe(false);
    expect(slots.inUse()).toBe(2);
    // Busy, freed while it waits: it gets that slot, in the order the waiters came.
    const order: string[] = [];
    const first = slots.takeWithin(1000).then((ok) => order.push(`here:${ok}`));
    const queued = slots.take().then(() => order.push('queue'));
    slots.give();
    slots.give();
    await Promise.all([first, queued]);
    expect(order).toEqual(['here:true', 'queue']);
    expect(slots.inUse()).toBe(2);
    // A line as long as the slots: the run goes through the queue at once, without waiting.
    const line = [slots.take(), slots.take()];
    const t = performance.now();
    expect(await slots.takeWithin(1000)).toBe(false);
    expect(performance.now() - t).toBeLessThan(100);
    slots.give();
    slots.give();
    await Promise.all(line);
    expect(await slots.takeWithin(0)).toBe(false);
  });
});
