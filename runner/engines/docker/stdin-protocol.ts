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
}

export function encodeInput(job: ExecutionJob, profile: DockerProfile): EncodedInput {
  const { files } = profile;
  if (job.files.length > files.maxCount) throw new InputRejected(`at most ${files.maxCount} files per run on profile "${profile.name}"`);
  const nonce = randomBytes(18).toString('hex');
  const code = Buffer.from(job.code, 'utf8');
  const chunks: Buffer[] = [Buffer.from(`SANDGATE/1 ${nonce} ${code.length} ${job.files.length}\n`)];
  let total = 0;
  for (const f of job.files) {
    // The API validated paths already; checked again here because this is the last door.
    const problem = filePathProblem(f.path);
    if (problem) throw new InputRejected(`file path "${f.path}" ${problem}`);
    const path = f.path;
    const content = Buffer.from(f.content, f.encoding === 'base64' ? 'base64' : 'utf8');
    total += content.length;
    if (total > files.maxBytes) throw new InputRejected(`input files exceed ${files.maxBytes} bytes on profile "${profile.name}"`);
    chunks.push(Buffer.from(`${content.length} ${Buffer.from(path).toString('base64')}\n`), content);
  }
  chunks.push(code);
  if (job.stdin) chunks.push(Buffer.from(job.stdin, 'utf8'));
  return { nonce, chunks };
}
