// The output of a run started ahead of its admission's end (a sealed engine's; HereClaim.begin):
// held until that end is known, then sent to the run's event stream in the order it came, or
// dropped if the run was not admitted. Nothing of such a run is seen before its request is in
// the audit log.
import type { OutputPublisher } from '../state/event-streams.ts';

export function heldOutput(out: OutputPublisher, admitted: Promise<boolean>): OutputPublisher {
  let open = false;
  let dropped = false;
  const held: Array<(o: OutputPublisher) => void> = [];
  void admitted.then((ok) => {
    dropped = !ok;
    open = ok;
    for (const send of held.splice(0)) if (ok) send(out);
  });
  const via = (send: (o: OutputPublisher) => void) => {
    if (open) send(out);
    else if (!dropped) held.push(send);
  };
  return {
    write: (fd, data) => via((o) => o.write(fd, data)),
    truncated: () => via((o) => o.truncated()),
    close: () => via((o) => o.close()),
  };
}
