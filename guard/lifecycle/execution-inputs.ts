// What an admitted run may ask of its profile, checked only after the agent is known to be
// allowed to use it (refuse before you reveal). The profile is the ceiling: a request may lower a
// limit, never raise it. Pure.
import { SandgateError } from '../../contract/errors.ts';
import type { ExecutionJob, ExecutionRequest } from '../../contract/execution.ts';
import type { Profile } from '../../contract/profile.ts';

export function checkInputs(req: ExecutionRequest, profile: Profile): ExecutionJob['limits'] {
  if (req.language && req.language !== profile.language) {
    throw new SandgateError(
      'language_mismatch',
      `profile "${profile.name}" runs ${profile.language}, not ${req.language}`,
    );
  }
  if (profile.engine === 'isolate' && (req.files?.length || req.stdin)) {
    throw new SandgateError(
      'unsupported_input',
      `profile "${profile.name}" has no filesystem or stdin: send code only`,
    );
  }
  if (profile.engine === 'docker' && req.files?.length) {
    const { maxCount, maxBytes } = profile.files;
    if (req.files.length > maxCount) {
      throw new SandgateError(
        'limit_exceeds_profile',
        `${req.files.length} files; profile "${profile.name}" takes at most ${maxCount}`,
      );
    }
    const bytes = req.files.reduce(
      (n, f) => n + Buffer.byteLength(f.content, f.encoding === 'base64' ? 'base64' : 'utf8'),
      0,
    );
    if (bytes > maxBytes)
      throw new SandgateError(
        'files_too_large',
        `files total ${bytes} bytes; profile "${profile.name}" takes at most ${maxBytes}`,
      );
  }
  return limitsFor(req, profile);
}

function limitsFor(req: ExecutionRequest, profile: Profile): ExecutionJob['limits'] {
  const { timeoutMs, memoryMb, outputBytes, codeBytes } = profile.limits;
  const ceiling = (name: string, asked: number | undefined, max: number, unit: string) => {
    if (asked !== undefined && asked > max) {
      throw new SandgateError(
        'limit_exceeds_profile',
        `${name} ${asked} is above the ceiling of profile "${profile.name}": at most ${max} ${unit}`,
      );
    }
  };
  ceiling('timeoutMs', req.timeoutMs, timeoutMs, 'ms');
  ceiling('memoryMb', req.memoryMb, memoryMb, 'MB');
  const size = Buffer.byteLength(req.code);
  if (size > codeBytes)
    throw new SandgateError(
      'code_too_large',
      `code is ${size} bytes; profile "${profile.name}" accepts at most ${codeBytes}`,
    );
  return { timeoutMs: req.timeoutMs ?? timeoutMs, memoryMb: req.memoryMb ?? memoryMb, outputBytes };
}
