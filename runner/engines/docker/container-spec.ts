// How a sandbox container is made: everything a program could use to reach out is off. Pure, so
// a unit test can read the whole spec.
import type { ContainerCreateOptions } from 'dockerode';
import type { DockerProfile } from '../../../contract/profile.ts';

export const SANDBOX_UID = 10001;
export const LABEL = {
  sandgate: 'sandgate',
  prefix: 'sandgate.prefix',
  owner: 'sandgate.owner',
  profile: 'sandgate.profile',
  execution: 'sandgate.execution',
} as const;

/** All the supervisor keeps: setuid/setgid to become the sandbox user, kill for its leftovers. */
export const SUPERVISOR_CAPS = ['SETUID', 'SETGID', 'KILL'] as const;

export interface SpecInput {
  profile: DockerProfile;
  memoryMb: number;
  /** Redis prefix of the instance: reapers of two instances on one Docker host stay apart. */
  prefix: string;
  /** The runner process that owns the container (for the reaper). */
  owner: string;
}

export function containerSpec({ profile, memoryMb, prefix, owner }: SpecInput): ContainerCreateOptions {
  const memory = memoryMb * 1024 * 1024;
  const fsize = profile.workdirMb * 1024 * 1024;
  return {
    Image: profile.image,
    // PID 1 is the run's supervisor (images/entrypoint.sh): root, so that it is another uid than
    // the program (uid 10001), which therefore cannot ptrace it or read its memory; it keeps only
    // the capabilities it needs to start the program as that uid and to kill what it leaves.
    User: '0:0',
    WorkingDir: '/work',
    // The entrypoint waits on stdin for the program (images/entrypoint.sh).
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    NetworkDisabled: true,
    Env: [],
    Labels: {
      [LABEL.sandgate]: '1',
      [LABEL.prefix]: prefix,
      [LABEL.owner]: owner,
      [LABEL.profile]: profile.name,
    },
    HostConfig: {
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      Tmpfs: {
        // 0711: the supervisor (another uid) may look into out/, never list /work.
        '/work': `rw,nosuid,nodev,size=${profile.workdirMb}m,uid=${SANDBOX_UID},gid=${SANDBOX_UID},mode=0711`,
        '/tmp': `rw,nosuid,nodev,noexec,size=16m,uid=${SANDBOX_UID},gid=${SANDBOX_UID},mode=0700`,
        // The supervisor's (root): the program's code when it comes without files.
        '/run/sandgate': `rw,nosuid,nodev,noexec,size=${Math.ceil(profile.limits.codeBytes / 1048576) + 1}m,mode=0755`,
      },
      Memory: memory,
      MemorySwap: memory, // swap equal to memory: no swap at all
      NanoCpus: Math.round(profile.cpus * 1e9),
      // Under gVisor the pids cgroup also counts gVisor's own threads (50 at start, hundreds
      // under load), so the cap is RLIMIT_NPROC there, which gVisor enforces per sandbox. Under
      // runc NPROC would count every container of uid 10001 together, so the cgroup it is.
      ...(profile.runtime === 'runsc' ? {} : { PidsLimit: profile.pidsLimit }),
      CapDrop: ['ALL'],
      CapAdd: [...SUPERVISOR_CAPS],
      SecurityOpt: ['no-new-privileges'],
      Ulimits: [
        { Name: 'nofile', Soft: 256, Hard: 256 },
        { Name: 'fsize', Soft: fsize, Hard: fsize },
        { Name: 'core', Soft: 0, Hard: 0 },
        ...(profile.runtime === 'runsc' ? [{ Name: 'nproc', Soft: profile.pidsLimit, Hard: profile.pidsLimit }] : []),
      ],
      Binds: [],
      Mounts: [],
      Privileged: false,
      IpcMode: 'private',
      AutoRemove: false, // removed by the engine after it has read the run's usage
      // Output travels only over the attach stream: no copy in a log file on the host.
      LogConfig: { Type: 'none', Config: {} },
      ...(profile.runtime === 'runsc' && { Runtime: 'runsc' }),
    },
  };
}
