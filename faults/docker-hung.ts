// A Docker socket that accepts connections and never answers (a loopback proxy): hung from the
// start, and forwarding to the real dockerd then hung in the middle. For 70 s js runs, docker
// runs (503 within a second), GET /v1/profiles and the other routes answer fast; when the proxy
// forwards again the docker profiles recover by themselves.
import { startDockerProxy } from '../test/helpers/docker-proxy.ts';
import { holdDegraded, report } from './docker-degraded.ts';
import type { Scenario } from './lib.ts';

export const dockerHung: Scenario = {
  name: 'docker-hung',
  budgetMs: 150_000,
  async run(ctx) {
    const fromStart = await startDockerProxy();
    const midway = await startDockerProxy();
    ctx.defer(() => fromStart.close());
    ctx.defer(() => midway.close());
    fromStart.hang();
    const results = await holdDegraded(ctx, [
      { name: 'hung from the start → answers', socket: fromStart.path, restore: () => fromStart.forward() },
      {
        name: 'hung mid-way → answers',
        socket: midway.path,
        breakIt: () => midway.hang(),
        restore: () => midway.forward(),
      },
    ]);
    return report('docker hung', results, ctx.crashes);
  },
};
