// The end of a run's admission as a test controls it: `admitted` is what an engine or the held
// output waits on; `say` gives the answer (yes: admitted, no: dropped).
export function admissionDecision(): { admitted: Promise<boolean>; say: (yes: boolean) => void } {
  let say: (yes: boolean) => void = () => {};
  const admitted = new Promise<boolean>((resolve) => {
    say = resolve;
  });
  return { admitted, say };
}
