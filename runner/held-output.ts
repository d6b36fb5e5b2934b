// The output of a run started ahead of its admission's end (a sealed engine's; HereClaim.begin):
// held until that end is known, then sent to the run's event stream in the order it came, or
// dropped if the run was not admitted. Nothing of such a run is seen before its request is in
// the audit log.
import type { OutputPublisher } from '../state/event-streams.ts';

export function heldOutput(out: OutputPublisher, admitted: Promise<boolean>): OutputPublisher {
  let said: boolean | undefined; // the admission's answer, once it has one
  const held: Array<(o: OutputPublisher) => void> = [];
  void admitted.then((yes) => {
    said = yes;
    for (const send of held.splice(0)) if (yes) send(out);
  });
  const via = (send: (o: OutputPublisher) => void) => {
    if (said === undefined) held.push(send);
    else if (said) send(out);
  };
  return {
    write: (fd, data) => via((o) => o.write(fd, data)),
    truncated: () => via((o) => o.truncated()),
    close: () => via((o) => o.close()),
  };
}
