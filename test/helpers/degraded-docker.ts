// What a client sees of a service whose Docker Engine is missing or hung: js runs, a docker
// profile's runs and GET /v1/profiles, sampled side by side for a while. The tests assert on it
// with generous bounds; the fault suite prints its figures.
import type { Answer } from './http-client.ts';
import type { ServiceProcess } from './service-process.ts';

export interface DegradedSample {
  /** Latencies (ms) of answers that were what a degraded engine should give. */
  js: number[];
  docker: number[];
  profiles: number[];
  /** Answers that were not: a failed js run, a docker run not refused with 503, … */
  wrong: string[];
}

const describe = (what: string, a: Answer) =>
  `${what}: ${a.status} ${JSON.stringify(a.body).slice(0, 200)} in ${Math.round(a.ms)} ms`;

async function guarded(what: string, wrong: string[], call: () => Promise<Answer>): Promise<Answer | undefined> {
  try {
    return await call();
  } catch (e) {
    wrong.push(`${what}: no answer (${(e as Error).message})`);
    return undefined;
  }
}

/** Samples for `forMs`, one round about every `everyMs`; `profile` is a docker profile. */
export async function sampleDegraded(
  svc: ServiceProcess,
  profile: string,
  forMs: number,
  everyMs = 250,
): Promise<DegradedSample> {
  const out: DegradedSample = { js: [], docker: [], profiles: [], wrong: [] };
  const until = Date.now() + forMs;
  for (let round = 0; round < 100_000 && Date.now() < until; round++) {
    const [js, docker, profiles] = await Promise.all([
      guarded('js', out.wrong, () => svc.client.execute(svc.token, { profile: 'js', code: '6*7' }, true, 10_000)),
      guarded(profile, out.wrong, () => svc.client.execute(svc.token, { profile, code: 'print(1)' }, true, 10_000)),
      guarded('profiles', out.wrong, () => svc.client.call('GET', '/v1/profiles', svc.token, undefined, 10_000)),
    ]);
    if (js) {
      if (js.status === 200 && js.body.status === 'succeeded' && js.body.result === 42) out.js.push(js.ms);
      else out.wrong.push(describe('js', js));
    }
    if (docker) {
      if (docker.status === 503 && docker.body.error?.code === 'engine_unavailable') out.docker.push(docker.ms);
      else out.wrong.push(describe(profile, docker));
    }
    if (profiles) {
      const list = (profiles.body.profiles ?? []) as { name: string; available: boolean }[];
      const ok =
        profiles.status === 200 &&
        list.find((p) => p.name === profile)?.available === false &&
        list.find((p) => p.name === 'js')?.available === true;
      if (ok) out.profiles.push(profiles.ms);
      else out.wrong.push(describe('profiles', profiles));
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return out;
}

/** Whether the docker profile is listed available (the probe's view), per GET /v1/profiles. */
export async function dockerListed(svc: ServiceProcess, profile: string): Promise<boolean> {
  const res = await svc.client.call('GET', '/v1/profiles', svc.token, undefined, 10_000);
  return (
    ((res.body.profiles ?? []) as { name: string; available: boolean }[]).find((p) => p.name === profile)?.available ===
    true
  );
}

/** Polls until `check` holds or `ms` passed; returns how long it took, or undefined. */
export async function within(ms: number, check: () => Promise<boolean>, everyMs = 100): Promise<number | undefined> {
  const t = Date.now();
  for (let i = 0; i < 1_000_000 && Date.now() - t < ms; i++) {
    if (await check().catch(() => false)) return Date.now() - t;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return undefined;
}
