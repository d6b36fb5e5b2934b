// Audit chains in segments: a writer seals its file past a size or an age, opens the next with a
// checkpoint over the seal, and moves sealed segments to an archive directory. Verify checks the
// live and archived segments as one chain: it passes beside a writer that is rotating, and fails
// naming the segment when one is removed, truncated, reordered or renamed.
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditCheckpoint, AuditRecord } from '../../contract/audit.ts';
import { generateAuditSigner } from '../../guard/audit/audit-signer.ts';
import { verifyAuditDirs } from '../../guard/audit/audit-verify.ts';
import { type AuditWriter, createAuditWriter } from '../../guard/audit/audit-writer.ts';
import { parseSegmentName, segmentName } from '../../guard/audit/segments.ts';
import { chainFiles, readRecords } from '../../guard/audit/trace-files.ts';

const signer = generateAuditSigner();
const made: string[] = [];
const tmp = async (prefix: string) => {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
};
afterAll(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));

const verify = (...dirs: string[]) => verifyAuditDirs(dirs, { publicKeys: [signer.publicKeyPem] });
const lines = async (path: string) => (await readFile(path, 'utf8')).split('\n').filter(Boolean);
const parsed = async (path: string) => (await lines(path)).map((l) => JSON.parse(l) as AuditRecord);
const segmentsIn = async (dir: string, writer: string) =>
  (await readdir(dir))
    .map((n) => ({ n, p: parseSegmentName(n) }))
    .filter((x) => x.p?.writer === writer)
    .map((x) => x.p!.index)
    .sort((a, b) => a - b);

/** A writer with small segments whose sealed ones (beyond one) move to `archive`. */
async function rotatingWriter(writerId = 'w', extra: Partial<Parameters<typeof createAuditWriter>[0]> = {}) {
  const live = await tmp('audit-live-');
  const archive = join(await tmp('audit-archive-'), 'archive'); // made by the writer
  const errors: unknown[] = [];
  const w = await createAuditWriter({
    dir: live,
    writerId,
    signer,
    checkpointEveryRecords: 7,
    segmentMaxBytes: 3000,
    archiveDir: archive,
    liveSegments: 1,
    onArchiveError: (e) => errors.push(e),
    ...extra,
  });
  return { w, live, archive, errors };
}

let n = 0;
const append = (w: AuditWriter, taskId = 'task_1') =>
  w.append({
    kind: 'execution.requested',
    agentId: 'ag_1',
    taskId,
    subject: `ex_${n++}`,
    data: { pad: 'x'.repeat(80) },
  });

async function burst(w: AuditWriter, count: number, width = 8): Promise<void> {
  let left = count;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (left-- > 0) await append(w);
    }),
  );
}

describe('audit segments', () => {
  it('rotate many times under concurrent writes into signed, linked segments, archived past retention', async () => {
    const { w, live, archive, errors } = await rotatingWriter();
    await burst(w, 400);
    // While running: the current segment and at most one sealed one stay live, the rest are archived.
    await eventuallyTrue(async () => (await segmentsIn(live, 'w')).length <= 2);
    const mid = await verify(live, archive);
    expect(mid, mid.error?.reason).toMatchObject({ ok: true, head: { w: { closed: false } } });
    await w.close();
    expect(errors).toEqual([]);
    expect(w.stats().rotations).toBeGreaterThan(10);

    // Closed: every segment and the head file are in the archive, nothing of it is left live.
    expect(await readdir(live)).toEqual([]);
    const indexes = await segmentsIn(archive, 'w');
    expect(indexes).toEqual(Array.from({ length: w.stats().rotations + 1 }, (_, i) => i));
    for (const i of indexes.slice(1)) {
      const segment = await parsed(join(archive, segmentName('w', i)));
      const previous = await parsed(join(archive, segmentName('w', i - 1)));
      const seal = previous.at(-1)!;
      const opening = segment[0]!;
      // The previous segment ends with a checkpoint signed for it; this one opens with one signed
      // for it over the seal's hash and seq.
      expect(seal.kind).toBe('audit.checkpoint');
      expect((seal.data as unknown as AuditCheckpoint).segment ?? 0).toBe(i - 1);
      expect(opening.kind).toBe('audit.checkpoint');
      expect(opening.data).toMatchObject({ segment: i, upToSeq: seal.seq, head: seal.hash });
      expect(opening.prev).toBe(seal.hash);
    }
    const done = await verify(live, archive);
    expect(done).toMatchObject({ ok: true, chains: 1, head: { w: { closed: true } } });
    // 400 records plus the checkpoints: every one of them counted once across the segments.
    const all = (await Promise.all(indexes.map((i) => lines(join(archive, segmentName('w', i)))))).flat().length;
    expect(done.records).toBe(all);
    expect(all).toBeGreaterThan(400);

    // trace reads every segment of every directory
    const read = await readRecords(await chainFiles([live, archive]), (r) => r.taskId === 'task_1');
    expect(read.records).toHaveLength(400);
  });

  it('seals by age too, and moves a sealed segment older than the live age limit', async () => {
    const { w, live, archive } = await rotatingWriter('aged', {
      segmentMaxBytes: 0,
      segmentMaxAgeMs: 60,
      liveSegments: 100,
      liveMaxAgeMs: 120,
    });
    for (let i = 0; i < 5; i++) {
      await append(w);
      await sleep(80);
    }
    await eventuallyTrue(async () => (await segmentsIn(archive, 'aged')).length >= 2);
    expect(w.stats().rotations).toBeGreaterThanOrEqual(3);
    expect(await verify(live, archive)).toMatchObject({ ok: true });
    await w.close();
    expect(await verify(live, archive)).toMatchObject({ ok: true, head: { aged: { closed: true } } });
  });

  it('verify passes beside writers that are rotating and archiving at that moment', async () => {
    const a = await rotatingWriter('ra');
    // a second writer in the same directories, as API and runners share the volumes
    const b = await createAuditWriter({
      dir: a.live,
      writerId: 'rb',
      signer,
      checkpointEveryRecords: 5,
      segmentMaxBytes: 2000,
      archiveDir: a.archive,
      liveSegments: 0,
    });
    let writing = true;
    const load = Promise.all([
      (async () => {
        while (writing) {
          await burst(a.w, 20, 4);
          await sleep(2);
        }
      })(),
      (async () => {
        while (writing) {
          await burst(b, 10, 2);
          await sleep(2);
        }
      })(),
    ]);
    const results = [];
    const until = Date.now() + 6000;
    while (results.length < 12 && Date.now() < until) {
      results.push(await verify(a.live, a.archive));
      await sleep(50);
    }
    writing = false;
    await load;
    expect(a.w.stats().rotations + b.stats().rotations).toBeGreaterThan(10);
    expect(results.length).toBeGreaterThan(3);
    for (const r of results) expect(r, r.error && `${r.error.file}: ${r.error.reason}`).toMatchObject({ ok: true });
    expect(results.at(-1)!.chains).toBe(2);
    await a.w.close();
    await b.close();
    expect(await verify(a.live, a.archive)).toMatchObject({ ok: true, chains: 2 });
  });

  it("a writer killed before its close: the next writer's start moves its sealed segments on, an idle one loses nothing", async () => {
    const { w: dead, live, archive } = await rotatingWriter('dead', { liveSegments: 100 });
    await burst(dead, 120);
    const before = await segmentsIn(live, 'dead');
    expect(before.length).toBeGreaterThan(4);
    // As a kill leaves it: never closed. Its newest segment was last written two hours ago.
    const past = new Date(Date.now() - 2 * 3600_000);
    await utimes(join(live, segmentName('dead', before.at(-1)!)), past, past);
    // Another writer that is merely idle keeps its sealed segments where its retention puts them.
    const quiet = await createAuditWriter({
      dir: live,
      writerId: 'quiet',
      signer,
      segmentMaxBytes: 3000,
      archiveDir: archive,
      liveSegments: 100,
    });
    await burst(quiet, 60);
    const next = await createAuditWriter({
      dir: live,
      writerId: 'next',
      signer,
      archiveDir: archive,
      sweepSilentAfterMs: 3600_000,
    });
    await next.append({ kind: 'task.created', taskId: 't', data: { goal: 'after the crash' } });
    await next.close();
    // the dead writer's sealed segments are archived; its newest (maybe torn) and its head file stay live
    expect(await segmentsIn(live, 'dead')).toEqual([before.at(-1)!]);
    expect(await segmentsIn(archive, 'dead')).toEqual(before.slice(0, -1));
    expect((await readdir(live)).includes('dead.head.json')).toBe(true);
    expect((await segmentsIn(live, 'quiet')).length).toBeGreaterThan(2);
    expect(await verify(live, archive)).toMatchObject({ ok: true, chains: 3 });
    // the dead writer was only idle after all: its own moves find the segments already archived
    await burst(dead, 40);
    await dead.close();
    await quiet.close();
    expect(dead.stats().archived).toBeGreaterThan(0);
    expect(await verify(live, archive)).toMatchObject({ ok: true, chains: 3, head: { dead: { closed: true } } });
    expect(await readdir(live)).toEqual([]);
  });

  describe('a tampered segment fails verify, named', () => {
    /** An open writer: sealed segments in the archive, the newest sealed one and the current one live. */
    async function openChain() {
      const made = await rotatingWriter(`t${n}`);
      await burst(made.w, 100);
      await eventuallyTrue(async () => (await segmentsIn(made.live, made.w.writerId)).length <= 2);
      const archived = await segmentsIn(made.archive, made.w.writerId);
      expect(archived.length).toBeGreaterThanOrEqual(4);
      expect(await verify(made.live, made.archive)).toMatchObject({ ok: true });
      return { ...made, writer: made.w.writerId, archived };
    }

    it('a middle segment removed', async () => {
      const { live, archive, writer, archived, w } = await openChain();
      const middle = archived[2]!;
      await rm(join(archive, segmentName(writer, middle)));
      const r = await verify(live, archive);
      expect(r).toMatchObject({ ok: false, error: { file: segmentName(writer, middle) } });
      expect(r.error!.reason).toContain(`segment missing: ${segmentName(writer, middle)}`);
      await w.close();
    });

    it('the last archived segment removed (the one before the live ones)', async () => {
      const { live, archive, writer, archived, w } = await openChain();
      const last = archived.at(-1)!;
      await rm(join(archive, segmentName(writer, last)));
      const r = await verify(live, archive);
      expect(r.error).toMatchObject({ file: segmentName(writer, last) });
      expect(r.error!.reason).toMatch(/^segment missing/);
      await w.close();
    });

    it('the first segment removed', async () => {
      const { live, archive, writer, w } = await openChain();
      await rm(join(archive, segmentName(writer, 0)));
      expect((await verify(live, archive)).error).toMatchObject({
        file: segmentName(writer, 0),
        reason: expect.stringMatching(/^segment missing: .* \(the chain has no first segment\)/),
      });
      await w.close();
    });

    it('two segments swapped (reordered by renaming)', async () => {
      const { live, archive, writer, archived, w } = await openChain();
      const [x, y] = [archived[1]!, archived[2]!];
      const px = join(archive, segmentName(writer, x));
      const py = join(archive, segmentName(writer, y));
      await rename(px, `${px}.tmp`);
      await rename(py, px);
      await rename(`${px}.tmp`, py);
      const r = await verify(live, archive);
      expect(r.error).toMatchObject({ file: segmentName(writer, x), line: 1 });
      expect(r.error!.reason).toMatch(/renamed or reordered/);
      await w.close();
    });

    it('a sealed segment truncated, at a line or mid-line', async () => {
      const { live, archive, writer, archived, w } = await openChain();
      const target = join(archive, segmentName(writer, archived[1]!));
      const original = await readFile(target);
      const kept = original.subarray(0, original.lastIndexOf(10, original.length - 2) + 1); // its seal cut
      await writeFile(target, kept);
      expect((await verify(live, archive)).error).toMatchObject({
        file: segmentName(writer, archived[1]!),
        reason: expect.stringMatching(/^sealed segment does not end (with its signed checkpoint|where)/),
      });
      await truncate(target, kept.length - 10);
      expect((await verify(live, archive)).error).toMatchObject({
        file: segmentName(writer, archived[1]!),
        reason: expect.stringMatching(/^truncated record/),
      });
      await w.close();
    });

    it('a sealed segment emptied, or differing between the live directory and the archive', async () => {
      const { live, archive, writer, archived, w } = await openChain();
      const name = segmentName(writer, archived[1]!);
      const original = await readFile(join(archive, name));
      await writeFile(join(archive, name), '');
      expect((await verify(live, archive)).error?.reason).toMatch(/^segment empty, yet a later one exists/);
      await writeFile(join(archive, name), original);
      // the same bytes in both directories (a move the crash interrupted): fine
      await copyFile(join(archive, name), join(live, name));
      expect(await verify(live, archive)).toMatchObject({ ok: true });
      // other bytes in one of them: not fine, whichever a reader would take
      const edited = original.toString().replace('"pad":"x', '"pad":"y');
      await writeFile(join(live, name), edited);
      expect((await verify(live, archive)).error?.reason).toMatch(/^segment differs between/);
      await w.close();
    });
  });

  it('states a crash mid-rotation or mid-move leaves verify, and a restarted writer beside them too', async () => {
    // No archive: every segment stays live, so the states below are cut from one directory.
    const live = await tmp('audit-live-');
    const w = await createAuditWriter({
      dir: live,
      writerId: 'crash',
      signer,
      checkpointEveryRecords: 7,
      segmentMaxBytes: 3000,
    });
    await burst(w, 120);
    const indexes = await segmentsIn(live, 'crash');
    expect(indexes.length).toBeGreaterThan(3);
    const newest = indexes.at(-1)!;
    const newestPath = join(live, segmentName('crash', newest));
    const newestLines = await lines(newestPath);
    const state = await tmp('audit-crash-state-');
    const head = JSON.parse(await readFile(join(live, 'crash.head.json'), 'utf8'));
    const copyOthers = async (to: string) => {
      await mkdir(to, { recursive: true });
      for (const i of indexes.slice(0, -1)) {
        await copyFile(join(live, segmentName('crash', i)), join(to, segmentName('crash', i)));
      }
    };
    // 1. killed right after the new segment was claimed, before its opening checkpoint: an empty newest file
    const s1 = join(state, 's1');
    await copyOthers(s1);
    await writeFile(join(s1, segmentName('crash', newest)), '');
    const seal = (await parsed(join(live, segmentName('crash', newest - 1)))).at(-1)!;
    const sealCp = seal.data as unknown as AuditCheckpoint;
    const beforeSeal = (await parsed(join(live, segmentName('crash', newest - 1))))
      .filter((r) => r.kind === 'audit.checkpoint')
      .at(-2);
    const priorCp = (beforeSeal?.data as unknown as AuditCheckpoint | undefined) ?? head.checkpoint;
    await writeFile(
      join(s1, 'crash.head.json'),
      JSON.stringify({ v: 2, writer: 'crash', checkpoint: priorCp, next: sealCp }),
    );
    expect(await verify(s1), 'empty newest segment').toMatchObject({ ok: true });
    // 2. killed before the new segment was claimed at all
    await rm(join(s1, segmentName('crash', newest)));
    expect(await verify(s1), 'no newest segment').toMatchObject({ ok: true });
    // 3. killed mid-move: a temporary copy in the archive, or both copies in place
    const s3 = join(state, 's3');
    const s3archive = join(state, 's3-archive');
    await copyOthers(s3);
    await copyFile(newestPath, join(s3, segmentName('crash', newest)));
    await copyFile(join(live, 'crash.head.json'), join(s3, 'crash.head.json'));
    await mkdir(s3archive);
    await copyFile(join(s3, segmentName('crash', 0)), join(s3archive, segmentName('crash', 0)));
    await writeFile(join(s3archive, `.${segmentName('crash', 1)}.moving`), 'half a copy');
    expect(await verify(s3, s3archive), 'mid-move').toMatchObject({ ok: true });
    expect(newestLines.length).toBeGreaterThan(0);

    // A restart is a new writer in the same directories: the dead one's files verify beside it.
    const restarted = await createAuditWriter({
      dir: s3,
      writerId: 'crash-2',
      signer,
      segmentMaxBytes: 2000,
      archiveDir: s3archive,
      liveSegments: 0,
    });
    await burst(restarted, 60);
    await restarted.close();
    const r = await verify(s3, s3archive);
    expect(r).toMatchObject({ ok: true, chains: 2, head: { crash: { closed: false }, 'crash-2': { closed: true } } });
    await w.close();
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function eventuallyTrue(test: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(20);
  }
}
