// Sandbox profiles: the ceiling for every run. Loaded from sandbox-profiles/*.yaml at start-up.
import { z } from 'zod';

export const ProfileName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, 'lowercase letters, digits and - (start with a letter, at most 63)');

export const Language = z.enum(['javascript', 'python', 'node', 'bash']);
export type Language = z.infer<typeof Language>;

export const ProfileLimits = z
  .strictObject({
    timeoutMs: z.number().int().min(10).max(600_000).describe('wall-clock ceiling of one run'),
    memoryMb: z.number().int().min(8).max(16_384).describe('memory ceiling of one run'),
    outputBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .describe('cap on stdout + stderr'),
    codeBytes: z
      .number()
      .int()
      .min(1)
      .max(8 * 1024 * 1024)
      .describe('largest program accepted'),
  })
  .meta({ id: 'ProfileLimits' });
export type ProfileLimits = z.infer<typeof ProfileLimits>;

export const ProfilePrice = z.strictObject({
  perRun: z.number().min(0).max(1000).default(0),
  perCpuSecond: z.number().min(0).max(1000).default(0),
  perGbSecond: z.number().min(0).max(1000).default(0).describe('per GB of peak memory, per second of wall time'),
});

const common = {
  name: ProfileName,
  description: z.string().max(500).default(''),
  language: Language,
  limits: ProfileLimits,
  price: ProfilePrice.default({ perRun: 0, perCpuSecond: 0, perGbSecond: 0 }),
};

export const IsolateProfile = z.strictObject({ ...common, engine: z.literal('isolate') });

export const DockerFiles = z.strictObject({
  maxCount: z.number().int().min(0).max(256).default(32).describe('input files per run'),
  maxBytes: z
    .number()
    .int()
    .min(0)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024)
    .describe('input files, all together'),
  outMaxBytes: z
    .number()
    .int()
    .min(0)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024)
    .describe('content bytes of the files returned from out/'),
  outMaxCount: z.number().int().min(0).max(1000).default(100).describe('files returned from out/'),
});

export const DockerProfile = z.strictObject({
  ...common,
  engine: z.literal('docker'),
  image: z.string().min(1).describe('a local image built by scripts/build-images'),
  runtime: z.enum(['runc', 'runsc']).default('runc').describe('runsc = gVisor'),
  cpus: z.number().positive().max(64).default(1),
  pidsLimit: z.number().int().min(8).max(4096).default(64),
  workdirMb: z.number().int().min(1).max(4096).default(64).describe('size of the /work tmpfs'),
  pool: z.number().int().min(0).max(32).default(2).describe('containers kept started and waiting; 0 = cold start'),
  files: DockerFiles.default({ maxCount: 32, maxBytes: 1024 * 1024, outMaxBytes: 1024 * 1024, outMaxCount: 100 }),
});
export type DockerProfile = z.infer<typeof DockerProfile>;

export const Profile = z.discriminatedUnion('engine', [IsolateProfile, DockerProfile]);
export type Profile = z.infer<typeof Profile>;
export type EngineName = Profile['engine'];

export const ProfileView = z
  .object({
    name: z.string(),
    description: z.string(),
    engine: z.string(),
    language: Language,
    limits: ProfileLimits,
    available: z.boolean().describe('false when the engine this profile needs is not installed here'),
  })
  .meta({ id: 'Profile' });
export type ProfileView = z.infer<typeof ProfileView>;
