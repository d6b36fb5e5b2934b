// The output of an attempt that may yet be thrown away (isolate-run.ts's synchronous slice):
// kept back until the attempt counts, then handed on in the order it came, and from then on
// straight through. Thrown away, none of it is seen.
import type { OutputListener } from '../output-collector.ts';

export class HeldListener implements OutputListener {
  readonly #to: OutputListener;
  #held: Array<(to: OutputListener) => void> | undefined = [];

  constructor(to: OutputListener) {
    this.#to = to;
  }

  write(fd: 1 | 2, data: Buffer | string): void {
    if (this.#held) this.#held.push((to) => to.write(fd, data));
    else this.#to.write(fd, data);
  }

  truncated(): void {
    if (this.#held) this.#held.push((to) => to.truncated());
    else this.#to.truncated();
  }

  /** The attempt counts: what was held goes on, and so does everything after it. */
  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const send of held) send(this.#to);
  }
}
