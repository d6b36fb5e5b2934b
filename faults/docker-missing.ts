// The Docker socket missing: a path that does not exist from the start, and a socket removed
// while the service runs (then put back). The process keeps serving for 70 s, js runs answer in
// their usual time, docker profile runs get 503 engine_unavailable within a second.
import { startDockerProxy } from '../test/helpers/docker-proxy.ts';
import { holdDegraded, report } from './docker-degraded.ts';
import type { Scenario } from './lib.ts';

export const dockerMissing: Scenario = {
  name: 'docker-missing',
  budgetMs: 150_000,
  async run(ctx) {
    const proxy = await startDockerProxy();
    ctx.defer(() => proxy.close());
    const results = await holdDegraded(ctx, [
      { name: 'never there', socket: '/nonexistent/docker.sock' },
      { name: 'removed → back', socket: proxy.path, breakIt: () => proxy.remove(), restore: () => proxy.restore() },
    ]);
    return report('docker missing', results, ctx.crashes);
  },
};
