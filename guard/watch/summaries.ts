// One line a human reads first: what the detector saw, in the terms of its settings. Pure.
import type { WatchSettings } from '../../contract/watch.ts';
import type { Trigger } from '../../state/watch.ts';

export function summarize(t: Trigger, target: string, s: WatchSettings): string {
  const [a, b] = t.figures;
  switch (t.detector) {
    case 'loop':
      return b === 'result'
        ? `the same result came back ${a} times in ${s.loop.windowS} s (last from ${target})`
        : `the same ${target} call ${a} times in ${s.loop.windowS} s`;
    case 'spike':
      return `${a} calls in ${s.spike.bucketS} s, more than ${s.spike.ratio}× the agent's baseline of ${b}`;
    case 'cost':
      return `the ${a} spent ${Number(b) / 1e9} in ${s.cost.windowS} s, above ${s.cost.perWindow}`;
    case 'novelty':
      return a === 'outside the task scope'
        ? `${b} is outside what the task declared it needs`
        : `first use of ${a?.replace(':', ' ')} by an agent with history`;
    case 'probing':
      return `${a} refusals in ${s.probing.windowS} s`;
    case 'tainted_flow':
      return `a tainted task reached for ${a?.replace(':', ' ')}`;
  }
}
