// A writer's chain in segment files: `<writer>.jsonl` is segment 0, then `<writer>~1.jsonl`,
// `<writer>~2.jsonl`, … The chain runs on across them (seq and prev continue); every segment but
// the newest ends with a checkpoint signed for it, and every segment after the first opens with
// one that names the previous segment's last record (see audit-writer.ts). Sealed segments may
// move from the live directory to an archive directory; verify and trace read both.
//
// A move never leaves a moment in which a segment is in neither directory: it is copied under a
// temporary name, made durable, renamed into place, and only then removed from the live
// directory. A reader lists the live directory before the archive, so whatever moves between
// the two listings is seen at least once, and opens a segment gone from the live directory in
// the archive instead.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, copyFile, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

const SEGMENT_FILE = /^([A-Za-z0-9_.-]{1,128}?)(?:~(\d{1,15}))?\.jsonl$/;

export const segmentName = (writer: string, index: number): string =>
  index === 0 ? `${writer}.jsonl` : `${writer}~${index}.jsonl`;

export function parseSegmentName(name: string): { writer: string; index: number } | null {
  const m = SEGMENT_FILE.exec(name);
  if (!m) return null;
  const index = m[2] === undefined ? 0 : Number(m[2]);
  if (m[2] !== undefined && (index < 1 || String(index) !== m[2])) return null; // ~0, ~01: not a name the writer makes
  return { writer: m[1]!, index };
}

export interface SegmentFile {
  writer: string;
  index: number;
  name: string;
  /** Where it was found, live directory first; a segment mid-move is in both. */
  paths: string[];
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Every writer's segments in the directories (listed in the order given), by writer, in index order. */
export async function listSegments(dirs: readonly string[]): Promise<Map<string, SegmentFile[]>> {
  const found = new Map<string, SegmentFile>();
  for (const dir of dirs) {
    for (const name of await names(dir)) {
      const parsed = parseSegmentName(name);
      if (!parsed) continue;
      const seen = found.get(name);
      if (seen) seen.paths.push(join(dir, name));
      else found.set(name, { ...parsed, name, paths: [join(dir, name)] });
    }
  }
  const byWriter = new Map<string, SegmentFile[]>();
  for (const s of found.values()) byWriter.set(s.writer, [...(byWriter.get(s.writer) ?? []), s]);
  for (const list of byWriter.values()) list.sort((a, b) => a.index - b.index);
  return new Map([...byWriter.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Opens the first of the paths that still exists (a live segment may have moved on to the archive). */
export async function openFirst(
  paths: readonly string[],
): Promise<{ fh: Awaited<ReturnType<typeof open>>; path: string }> {
  let last: unknown;
  for (const path of paths) {
    try {
      return { fh: await open(path, 'r'), path };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      last = e;
    }
  }
  throw last;
}

export async function fileSha256(path: string): Promise<string | null> {
  try {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Moves `name` from `from` to `to` durably (the archive may be another mount): copy to a
 * temporary name of its own, fsync, rename, fsync the directory, then remove the original. Two
 * processes may move the same sealed segment at once (a writer and a sweep): both copies are the
 * same bytes, and a source already gone counts as moved when the archive holds it.
 */
export async function moveDurably(from: string, to: string, name: string): Promise<void> {
  const tmp = join(to, `.${name}.${process.pid}-${randomBytes(4).toString('hex')}.moving`);
  try {
    await copyFile(join(from, name), tmp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && (await exists(join(to, name)))) return;
    throw e;
  }
  try {
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(to, name));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(to);
  await rm(join(from, name), { force: true });
  await syncDir(from);
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * The sealed segments of writers that went silent (killed before they could close and move
 * their chain) move to the archive: every segment of such a writer but its newest, which may be
 * the one it was writing; that one and its head file stay live. A writer counts as silent when
 * its newest segment has not changed for `silentMs`; one that was only idle loses nothing (its
 * own moves find the segment already there). Returns how many segments moved.
 */
export async function sweepSilentWriters(
  dir: string,
  archiveDir: string,
  opts: { except: string; silentMs: number; now?: number },
): Promise<number> {
  const now = opts.now ?? Date.now();
  let moved = 0;
  for (const [writer, segments] of await listSegments([dir])) {
    if (writer === opts.except || segments.length < 2) continue;
    const newest = segments.at(-1)!;
    const changed = await stat(newest.paths[0]!).then(
      (s) => s.mtimeMs,
      () => now,
    );
    if (now - changed < opts.silentMs) continue;
    for (const s of segments.slice(0, -1)) {
      await moveDurably(dir, archiveDir, s.name);
      moved++;
    }
  }
  return moved;
}
