// Real Docker for the tests: containers carrying a test instance's prefix label.
import Dockerode from 'dockerode';
import { LABEL } from '../../runner/engines/docker/container-spec.ts';

export const docker = new Dockerode();

export async function containersOf(prefix: string): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABEL.prefix}=${prefix}`] } });
}

export async function hasRuntime(name: string): Promise<boolean> {
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  return Object.hasOwn(info.Runtimes ?? {}, name);
}

/** Force-removes what a test instance left (after the test has looked); returns how many. */
export async function removeContainersOf(prefix: string): Promise<number> {
  const list = await containersOf(prefix);
  await Promise.all(
    list.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
  return list.length;
}
