// Output held until it is known whether it may be seen, then handed on in the order it came, or
// dropped. Two users: a run started ahead of its admission's end (a sealed engine's;
// HereClaim.begin), whose output reaches its event stream only once its request is in the audit
// log; and an attempt of a js run that may yet be thrown away (isolate-run.ts's synchronous
// slice), whose output counts only if the attempt does.
import type { OutputListener } from './output-collector.ts';

type Closable = OutputListener & { close(): void };

export function heldOutput(out: Closable, decided: Promise<boolean>): Closable;
export function heldOutput(out: OutputListener, decided: Promise<boolean>): OutputListener;
export function heldOutput(out: OutputListener & { close?(): void }, decided: Promise<boolean>): Closable {
  let said: boolean | undefined; // the answer, once there is one
  const held: Array<(o: typeof out) => void> = [];
  void decided.then((yes) => {
    said = yes;
    for (const send of held.splice(0)) if (yes) send(out);
  });
  const via = (send: (o: typeof out) => void) => {
    if (said === undefined) held.push(send);
    else if (said) send(out);
  };
  return {
    write: (fd, data) => via((o) => o.write(fd, data)),
    truncated: () => via((o) => o.truncated()),
    close: () => via((o) => o.close?.()),
  };
}
