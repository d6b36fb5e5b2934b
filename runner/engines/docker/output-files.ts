// The files a run hands back from /work/out, read from the tar the supervisor made after the
// program was gone. Every name is checked like an input path; only regular files come back,
// counted by their content bytes and their number against the profile's caps. Pure.
import type { EngineResult } from '../../../contract/execution.ts';
import { relativePathProblem } from '../../../contract/file-path.ts';
import type { DockerProfile } from '../../../contract/profile.ts';
import { readTar } from './tar-reader.ts';

export interface OutputFiles {
  files: NonNullable<EngineResult['files']>;
  /** What was left out and why, for the run's stderr; empty when everything came back. */
  notes: string[];
}

export function outputFiles(tar: Buffer, caps: DockerProfile['files']): OutputFiles {
  const { entries, complete } = readTar(tar);
  const files: OutputFiles['files'] = [];
  const notes: string[] = [];
  const refused: string[] = [];
  let bytes = 0;
  let overCount = 0;
  let overBytes = 0;
  const seen = new Map<string, Buffer>();
  for (const e of entries) {
    if (e.type === '5' && e.path === '') continue; // ./ itself
    const problem = relativePathProblem(e.path);
    if (problem) {
      refused.push(`${JSON.stringify(e.path)} (${problem})`);
      continue;
    }
    // A hard link is the same file under a second name (GNU tar stores its data once).
    const data = e.type === '1' && e.linkTo !== undefined ? seen.get(e.linkTo) : e.type === '0' ? e.data : undefined;
    if (data === undefined) continue; // directories, symlinks, devices, fifos: not files
    if (e.type === '0') seen.set(e.path, e.data);
    if (files.length >= caps.outMaxCount) {
      overCount++;
      continue;
    }
    if (bytes + data.length > caps.outMaxBytes) {
      overBytes++;
      continue;
    }
    bytes += data.length;
    files.push(encode(e.path, data));
  }
  if (refused.length) notes.push(`refused ${refused.length} returned path(s): ${refused.slice(0, 5).join(', ')}`);
  if (overCount) notes.push(`${overCount} more file(s) in out/ past the cap of ${caps.outMaxCount} files were dropped`);
  if (overBytes) notes.push(`${overBytes} file(s) in out/ past the cap of ${caps.outMaxBytes} bytes were dropped`);
  if (!complete)
    notes.push(
      `out/ holds more than the caps allow (${caps.outMaxCount} files, ${caps.outMaxBytes} bytes); the rest was not read`,
    );
  return { files, notes };
}

function encode(path: string, data: Buffer): OutputFiles['files'][number] {
  try {
    return { path, content: new TextDecoder('utf-8', { fatal: true }).decode(data), encoding: 'utf8' };
  } catch {
    return { path, content: data.toString('base64'), encoding: 'base64' };
  }
}
