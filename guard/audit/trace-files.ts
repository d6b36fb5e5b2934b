// Reading audit records straight from the chain files, without Redis: a task's story survives
// the loss of the index (`npm run audit -- trace`), and the console can compare an indexed copy
// with the file it came from. Reads every chain file (`<writer>.jsonl`, and rotated segments
// `<writer>~<n>.jsonl`) of the given directories line by line, so memory stays bounded by what is
// kept, not by the size of the log. This is reading, not verifying: `npm run audit -- verify`
// (audit-verify.ts) is what proves the files untouched.
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type AuditRecord, CHECKPOINT_KIND } from '../../contract/audit.ts';
import { storyLine } from './story.ts';

const CHAIN_FILE = /^([A-Za-z0-9_.-]{1,128})(?:~\d{1,15})?\.jsonl$/;

export interface FileRead {
  records: AuditRecord[];
  /** Chain files read. */
  files: number;
  /** Lines that are not JSON records (a torn tail, a stray file): named, never silently dropped. */
  unreadable: Array<{ file: string; line: number }>;
}

/** The chain files of the directories, optionally only those of some writers. */
export async function chainFiles(dirs: readonly string[], writers?: ReadonlySet<string>): Promise<string[]> {
  const out: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    for (const name of names.sort()) {
      const m = CHAIN_FILE.exec(name);
      if (m && (!writers || writers.has(m[1]!))) out.push(join(dir, name));
    }
  }
  return out;
}

/**
 * Every record of the files for which `keep` is true, in the index's order (time, then id), each
 * once (a segment being moved to the archive can be in both directories for a moment).
 * `prefilter` is a cheap text test run before a line is parsed.
 */
export async function readRecords(
  files: readonly string[],
  keep: (r: AuditRecord) => boolean,
  prefilter: (line: string) => boolean = () => true,
): Promise<FileRead> {
  const byId = new Map<string, AuditRecord>();
  const unreadable: FileRead['unreadable'] = [];
  for (const file of files) {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
    let n = 0;
    for await (const line of lines) {
      n++;
      if (line === '') continue;
      // A line that does not end its object is torn (a crash mid-write) whatever it was about.
      if (!line.endsWith('}')) {
        unreadable.push({ file, line: n });
        continue;
      }
      if (!prefilter(line)) continue;
      let r: AuditRecord;
      try {
        r = JSON.parse(line) as AuditRecord;
      } catch {
        unreadable.push({ file, line: n });
        continue;
      }
      if (typeof r?.id !== 'string' || typeof r.time !== 'string') {
        unreadable.push({ file, line: n });
        continue;
      }
      if (r.kind !== CHECKPOINT_KIND && keep(r)) byId.set(r.id, r);
    }
  }
  const records = [...byId.values()].sort((a, b) => {
    const t = Date.parse(a.time) - Date.parse(b.time);
    return t !== 0 ? t : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  return { records, files: files.length, unreadable };
}

/** A task's records and story from the files of `dirs` alone. */
export async function taskStoryFromFiles(
  dirs: readonly string[],
  taskId: string,
): Promise<FileRead & { story: string[] }> {
  const needle = `"taskId":${JSON.stringify(taskId)}`;
  const read = await readRecords(
    await chainFiles(dirs),
    (r) => r.taskId === taskId,
    (line) => line.includes(needle),
  );
  return { ...read, story: read.records.map(storyLine) };
}
