// A whole Sandgate service process on loopback (api or all) with its client and an agent, for
// the process tests and the fault suite.

import { type ServiceClient, serviceClient } from './http-client.ts';
import { type Child, spawnSandgate, waitForOutput } from './processes.ts';

export interface ServiceProcess {
  child: Child;
  client: ServiceClient;
  /** A token of an agent granted `profiles`. */
  token: string;
  /** SIGTERM (or `signal`) and the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `env` must hold PORT and SANDGATE_ADMIN_TOKEN (see testEnv). */
export async function startServiceProcess(
  mode: 'all' | 'api',
  env: Record<string, string>,
  profiles: string[] = ['js'],
  limits?: Record<string, number>,
): Promise<ServiceProcess> {
  const child = spawnSandgate(mode, env);
  await waitForOutput(child, /sandgate started/, 30_000);
  const client = serviceClient(Number(env.PORT), env.SANDGATE_ADMIN_TOKEN!);
  const { token } = await client.agent({ profiles }, limits);
  return {
    child,
    client,
    token,
    async stop(signal = 'SIGTERM') {
      if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill(signal);
      return child.exited;
    },
  };
}
