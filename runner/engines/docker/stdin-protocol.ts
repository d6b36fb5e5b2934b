// What the host writes to a sandbox container's stdin (the format images/entrypoint.sh reads),
// and the checks on input file paths that keep every file inside /work.
import { randomBytes } from 'node:crypto';
import type { ExecutionJob } from '../../../contract/execution.ts';
import { filePathProblem } from '../../../contract/file-path.ts';
import type { DockerProfile } from '../../../contract/profile.ts';

export class InputRejected extends Error {
  override name = 'InputRejected';
}

export interface EncodedInput {
  nonce: string;
  chunks: Buffer[];
  /** Bytes of tar the supervisor sends back from /work/out at most (see outTarLimit). */
  outLimit: number;
}

/** Worst-case tar overhead of one file: header, GNU long-name header and name, padding. */
const TAR_OVERHEAD_PER_FILE = 2048;

/**
 * How much of the tar of /work/out the supervisor sends: the content cap plus every permitted
 * file's overhead, so the engine can count content bytes and files (not archive bytes) against
 * the caps, while a program that leaves gigabytes or thousands of files costs no more than this.
 */
export function outTarLimit(files: DockerProfile['files']): number {
  return files.outMaxBytes + (files.outMaxCount + 2) * TAR_OVERHEAD_PER_FILE;
}

export function encodeInput(job: ExecutionJob, profile: DockerProfile): EncodedInput {
  const { files } = profile;
  if (job.files.length > files.maxCount)
    throw new InputRejected(`at most ${files.maxCount} files per run on profile "${profile.name}"`);
  const nonce = randomBytes(18).toString('hex');
  const code = Buffer.from(job.code, 'utf8');
  const outLimit = outTarLimit(files);
  const chunks: Buffer[] = [Buffer.from(`SANDGATE/2 ${nonce} ${code.length} ${job.files.length} ${outLimit}\n`)];
  let total = 0;
  for (const f of job.files) {
    // The API validated paths already; checked again here because this is the last door.
    const problem = filePathProblem(f.path);
    if (problem) throw new InputRejected(`file path "${f.path}" ${problem}`);
    const content = Buffer.from(f.content, f.encoding === 'base64' ? 'base64' : 'utf8');
    total += content.length;
    if (total > files.maxBytes)
      throw new InputRejected(`input files exceed ${files.maxBytes} bytes on profile "${profile.name}"`);
    chunks.push(Buffer.from(`${content.length} ${Buffer.from(f.path).toString('base64')}\n`), content);
  }
  chunks.push(code);
  if (job.stdin) chunks.push(Buffer.from(job.stdin, 'utf8'));
  return { nonce, chunks, outLimit };
}
