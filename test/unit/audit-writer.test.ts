import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AUDIT_GENESIS, type AuditCheckpoint, AuditHeadFile, type AuditRecord } from '../../contract/audit.ts';
import { SandgateError } from '../../contract/errors.ts';
import { checkpointSignatureProblem, generateAuditSigner, pinKeys } from '../../guard/audit/audit-signer.ts';
import { verifyAuditDir } from '../../guard/audit/audit-verify.ts';
import { createAuditWriter, LAZY_FLUSH_MS } from '../../guard/audit/audit-writer.ts';

const signer = generateAuditSigner();
const made: string[] = [];
const tmp = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'audit-writer-'));
  made.push(dir);
  return dir;
};
afterAll(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));
const chainLines = async (dir: string, writer: string) =>
  (await readFile(join(dir, `${writer}.jsonl`), 'utf8')).split('\n').filter(Boolean);
const records = async (dir: string, writer: string) =>
  (await chainLines(dir, writer)).map((l) => JSON.parse(l) as AuditRecord);
const headFile = async (dir: string, writer: string) =>
  AuditHeadFile.parse(JSON.parse(await readFile(join(dir, `${writer}.head.json`), 'utf8')));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('audit writer', () => {
  it('writes a lazy record with the next one (one durable write), or alone within LAZY_FLUSH_MS', async () => {
    const dir = await tmp();
    const w = await createAuditWriter({ dir, writerId: 'lazy', signer });
    const syncsBefore = w.stats().syncs;
    const started = w.append({ kind: 'run.started', subject: 'ex_1', data: { profile: 'js' } }, { lazy: true });
    await sleep(5);
    expect(await records(dir, 'lazy')).toHaveLength(0); // not written on its own yet
    const finished = await w.append({ kind: 'run.finished', subject: 'ex_1', data: { status: 'succeeded' } });
    expect((await started).seq).toBe(finished.seq - 1); // sequenced in call order
    expect(w.stats().syncs - syncsBefore).toBe(1);
    expect((await records(dir, 'lazy')).map((r) => r.kind)).toEqual(['run.started', 'run.finished']);

    // Alone: still durable, soon, by its own write.
    const t0 = Date.now();
    const alone = await w.append({ kind: 'run.started', subject: 'ex_2', data: { profile: 'js' } }, { lazy: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(LAZY_FLUSH_MS - 5);
    expect((await records(dir, 'lazy')).at(-1)).toEqual(alone);
    expect(w.stats().syncs - syncsBefore).toBe(2);
    await w.close();
    expect(await verifyAuditDir(dir, { publicKeys: [signer.publicKey] })).toMatchObject({ ok: true, records: 4 }); // and the closing checkpoint
  });

  it('a lazy record with a bound of its own is written within it, whatever the bounds of the others queued', async () => {
    const dir = await tmp();
    const w = await createAuditWriter({ dir, writerId: 'lazy-bound', signer });
    const syncsBefore = w.stats().syncs;
    // Well within LAZY_FLUSH_MS (25 ms): had the 3 ms bound been put off to it, nothing would be on disk yet.
    const onDiskSoon = async () => {
      await sleep(15);
      return (await records(dir, 'lazy-bound')).length;
    };
    // A longer bound queued after a short one does not put the write off…
    void w.append({ kind: 'run.started', subject: 'ex_1', data: { profile: 'js' } }, { lazy: 3 });
    void w.append({ kind: 'run.started', subject: 'ex_2', data: { profile: 'js' } }, { lazy: true });
    expect(await onDiskSoon()).toBe(2);
    // …and a short one queued after a longer one brings it forward.
    void w.append({ kind: 'run.started', subject: 'ex_3', data: { profile: 'js' } }, { lazy: true });
    void w.append({ kind: 'run.started', subject: 'ex_4', data: { profile: 'js' } }, { lazy: 3 });
    expect(await onDiskSoon()).toBe(4);
    expect(w.stats().syncs - syncsBefore).toBe(2); // one write each time
    await w.close();
  });

  it('writes its batches on the event loop by default, in the thread pool with onLoopWriteMaxMs 0: the same chain', async () => {
    for (const [onLoopWriteMaxMs, where] of [
      [undefined, 'onLoopWrites'],
      [0, 'offLoopWrites'],
    ] as const) {
      const dir = await tmp();
      const writerId = `where-${onLoopWriteMaxMs ?? 'default'}`;
      const w = await createAuditWriter({
        dir,
        writerId,
        signer,
        ...(onLoopWriteMaxMs !== undefined && { onLoopWriteMaxMs }),
      });
      for (let i = 0; i < 3; i++) await w.append({ kind: 'run.started', subject: `ex_${i}`, data: { profile: 'js' } });
      const { syncs, onLoopWrites, offLoopWrites } = w.stats();
      expect(onLoopWrites + offLoopWrites).toBe(syncs);
      expect(w.stats()[where]).toBe(syncs);
      expect((await records(dir, writerId)).filter((r) => r.kind === 'run.started')).toHaveLength(3);
      await w.close();
      expect(await verifyAuditDir(dir, { publicKeys: [signer.publicKey] })).toMatchObject({ ok: true, records: 4 });
    }
  });

  it('opens every chain segment O_DSYNC, so a write that returned is on the disk (no separate sync)', async () => {
    const dir = await tmp();
    const w = await createAuditWriter({ dir, writerId: 'dsync', signer, segmentMaxBytes: 2048 });
    // Enough records to rotate: the new segment must be opened the same way.
    for (let i = 0; i < 20; i++)
      await w.append({ kind: 'run.finished', subject: `ex_${i}`, data: { pad: 'x'.repeat(200) } });
    const O_DSYNC = 0o10000; // Linux, asm-generic/fcntl.h: a kernel that honours it writes data and size before returning
    const chainFds = [];
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
      if (!target.startsWith(dir) || !target.endsWith('.jsonl')) continue;
      const flags = /flags:\s+(\d+)/.exec(await readFile(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      chainFds.push({ target, dsync: (Number.parseInt(flags ?? '0', 8) & O_DSYNC) !== 0 });
    }
    expect(chainFds.length).toBe(1); // the open segment (the sealed ones are closed)
    expect(chainFds[0]!.target).toMatch(/dsync~\d+\.jsonl$/);
    expect(chainFds.every((f) => f.dsync)).toBe(true);
    await w.close();
  });

  it('resolves an append only once its line is in the file, synced', async () => {
    const dir = await tmp();
    const w = await createAuditWriter({ dir, writerId: 'w1', signer });
    // the head file exists before the first record, so a chain without one means it was removed,
    // and it names the signed opening checkpoint, so a chain with records and no checkpoint was forged
    const opening = await headFile(dir, 'w1');
    expect(opening).toEqual({
      v: 2,
      writer: 'w1',
      checkpoint: {
        writer: 'w1',
        upToSeq: 0,
        head: AUDIT_GENESIS,
        closed: false,
        everyRecords: 1000,
        everyMs: 1000,
        keyId: signer.keyId,
        signature: expect.any(String),
      },
      next: null,
    });
    expect(checkpointSignatureProblem(opening.checkpoint!, pinKeys([signer.publicKey]))).toBeNull();
    expect((await stat(join(dir, 'w1.jsonl'))).mode & 0o777).toBe(0o600);
    for (let i = 1; i <= 3; i++) {
      const r = await w.append({ kind: 'execution.requested', agentId: 'ag_1', subject: `ex_${i}`, data: { i } });
      const onDisk = await records(dir, 'w1');
      expect(onDisk).toHaveLength(i);
      expect(onDisk[i - 1]).toEqual(r);
      expect(w.stats().syncs).toBe(i);
      expect(w.head()).toEqual({ seq: i, hash: r.hash });
    }
    await w.close();
  });

  it('group-commits concurrent appends: one write + sync per batch, order kept', async () => {
    const dir = await tmp();
    const w = await createAuditWriter({
      dir,
      writerId: 'w1',
      signer,
      checkpointEveryRecords: 100_000,
      checkpointEveryMs: 60_000,
    });
    const appended = await Promise.all(Array.from({ length: 500 }, (_, i) => w.append({ kind: 'x.y', data: { i } })));
    const { syncs, batches, records: n } = w.stats();
    expect(n).toBe(500);
    expect(syncs).toBe(batches);
    expect(syncs).toBeLessThanOrEqual(5); // in practice 1: all 500 arrive in one tick
    expect(appended.map((r) => r.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(appended.map((r) => r.data.i)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(await records(dir, 'w1')).toEqual(appended);
    await w.close();
  });

  it('checkpoints every N records and at close, publishing the head file', async () => {
    const dir = await tmp();
    const durable: AuditRecord[] = [];
    const w = await createAuditWriter({
      dir,
      writerId: 'w1',
      signer,
      checkpointEveryRecords: 10,
      checkpointEveryMs: 60_000,
      onDurable: (rs) => durable.push(...rs),
    });
    for (let i = 0; i < 25; i++) await w.append({ kind: 'x.y', data: { i } });
    let onDisk = await records(dir, 'w1');
    const cps = () => onDisk.filter((r) => r.kind === 'audit.checkpoint');
    expect(cps().map((r) => r.seq)).toEqual([11, 22]); // after 10 records each, covering seq - 1
    expect(cps().map((r) => r.data.upToSeq)).toEqual([10, 21]);
    const running = await headFile(dir, 'w1');
    expect(running.checkpoint?.upToSeq).toBe(10); // durable before the next one was published
    expect(running.next?.upToSeq).toBe(21); // the one in flight (now durable)
    await w.close();
    onDisk = await records(dir, 'w1');
    expect(onDisk).toHaveLength(28);
    expect(onDisk.at(-1)).toMatchObject({ kind: 'audit.checkpoint', seq: 28, data: { upToSeq: 27 } });
    const sealed = await headFile(dir, 'w1');
    expect(sealed.next).toBeNull();
    expect(sealed.checkpoint).toEqual({ writer: 'w1', ...onDisk.at(-1)!.data });
    expect(durable).toEqual(onDisk); // onDurable saw every record, checkpoints too, in order
    expect(await verifyAuditDir(dir, { publicKeys: [signer.publicKey] })).toMatchObject({ ok: true, records: 28 });
  });

  it('checkpoints after checkpointEveryMs when records arrived, and only then', async () => {
    const dir = await tmp();
    const w = await createAuditWriter({
      dir,
      writerId: 'w1',
      signer,
      checkpointEveryRecords: 1000,
      checkpointEveryMs: 50,
    });
    await w.append({ kind: 'x.y', data: {} });
    await sleep(300);
    const onDisk = await records(dir, 'w1');
    expect(onDisk.map((r) => r.kind)).toEqual(['x.y', 'audit.checkpoint']);
    expect((await headFile(dir, 'w1')).next?.upToSeq).toBe(1);
    await sleep(200);
    expect(await chainLines(dir, 'w1')).toHaveLength(2);
    await w.close(); // nothing new since: only the signed closing checkpoint, so a clean close cannot be faked
    const closed = await records(dir, 'w1');
    expect(closed.map((r) => [r.kind, r.data.upToSeq, r.data.closed])).toEqual([
      ['x.y', undefined, undefined],
      ['audit.checkpoint', 1, false],
      ['audit.checkpoint', 2, true],
    ]);
    expect(await headFile(dir, 'w1')).toMatchObject({ checkpoint: { upToSeq: 2, closed: true }, next: null });
  });

  it('POSTs each durable checkpoint to the witness; a failing witness never blocks appends', async () => {
    const received: AuditCheckpoint[] = [];
    let status = 200;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.writeHead(status).end();
      });
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/checkpoints`;
    try {
      const dir = await tmp();
      const failures: AuditCheckpoint[] = [];
      const opts = {
        signer,
        checkpointEveryRecords: 3,
        checkpointEveryMs: 60_000,
        witnessUrl: url,
        onWitnessError: (_e: unknown, cp: AuditCheckpoint) => failures.push(cp),
      };
      const w = await createAuditWriter({ dir, writerId: 'w1', ...opts });
      for (let i = 0; i < 7; i++) await w.append({ kind: 'x.y', data: { i } });
      await w.close();
      const inChain = (await records(dir, 'w1'))
        .filter((r) => r.kind === 'audit.checkpoint')
        .map((r) => ({ writer: 'w1', ...r.data }) as AuditCheckpoint);
      expect(inChain.map((c) => c.upToSeq)).toEqual([3, 7, 9]);
      expect(inChain.map((c) => c.closed)).toEqual([false, false, true]);
      // the opening checkpoint first: the witness knows of the chain before it holds anything
      const opening = {
        writer: 'w1',
        upToSeq: 0,
        head: AUDIT_GENESIS,
        closed: false,
        everyRecords: 3,
        everyMs: 60_000,
        keyId: signer.keyId,
        signature: expect.any(String),
      };
      expect([...received].sort((a, b) => a.upToSeq - b.upToSeq)).toEqual([opening, ...inChain]);
      expect(failures).toEqual([]);

      status = 500;
      const w2 = await createAuditWriter({ dir, writerId: 'w2', ...opts });
      for (let i = 0; i < 4; i++) await w2.append({ kind: 'x.y', data: { i } });
      await w2.close();
      expect(failures.map((c) => [c.writer, c.upToSeq])).toEqual(expect.arrayContaining([['w2', 3]]));
      expect(await chainLines(dir, 'w2')).toHaveLength(6); // 4 records + 2 checkpoints, all durable regardless
    } finally {
      server.close();
    }
  });

  it('rejects every pending append, and all later ones, when the log cannot be written', async () => {
    const dir = await tmp();
    const w = await createAuditWriter({ dir, writerId: 'w1', signer, checkpointEveryRecords: 1 });
    const ok = await w.append({ kind: 'x.y', data: {} });
    // The head file's path becomes a directory: publishing the next checkpoint fails for real (EISDIR).
    await rm(join(dir, 'w1.head.json'));
    await mkdir(join(dir, 'w1.head.json'));
    const first = Array.from({ length: 5 }, (_, i) => w.append({ kind: 'x.y', data: { i } }));
    await new Promise((r) => setImmediate(r)); // the batch is in flight; these queue behind it
    const queued = Array.from({ length: 5 }, (_, i) => w.append({ kind: 'x.y', data: { i } }));
    const settled = await Promise.allSettled([...first, ...queued]);
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      const e = (s as PromiseRejectedResult).reason as SandgateError;
      expect(e).toBeInstanceOf(SandgateError);
      expect([e.code, e.status]).toEqual(['dependency_unavailable', 503]);
    }
    await expect(w.append({ kind: 'x.y', data: {} })).rejects.toMatchObject({ code: 'dependency_unavailable' });
    expect(w.head()).toEqual({ seq: 2, hash: expect.any(String) }); // ok + its checkpoint; nothing after
    expect((await records(dir, 'w1')).map((r) => r.seq)).toEqual([ok.seq, 2]);
    await w.close();
  });

  it('rejects a batch whose write fails mid-way (file size limit) and never resolves what is not on disk', async () => {
    const dir = await tmp();
    const url = (f: string) => new URL(`../../guard/audit/${f}`, import.meta.url).href;
    const script = join(dir, 'child.mjs');
    await writeFile(
      script,
      `const { createAuditWriter } = await import(${JSON.stringify(url('audit-writer.ts'))});
       const { generateAuditSigner } = await import(${JSON.stringify(url('audit-signer.ts'))});
       const w = await createAuditWriter({ dir: process.argv[2], writerId: 'fsz', signer: generateAuditSigner(), checkpointEveryMs: 60000 });
       const first = [];
       for (let i = 0; i < 3; i++) first.push((await w.append({ kind: 'x.y', data: { i } })).seq);
       const big = 'x'.repeat(400);
       const batch = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => w.append({ kind: 'x.y', data: { i, big } })));
       const later = await w.append({ kind: 'x.y', data: {} }).then(() => 'resolved', (e) => e.code);
       await w.close();
       console.log(JSON.stringify({ first, batch: batch.map((r) => r.status === 'fulfilled' ? 'resolved' : r.reason.code + ' ' + r.reason.message), later }));`,
    );
    const logDir = join(dir, 'audit');
    // RLIMIT_FSIZE 8 KiB: the kernel cuts the big write short, then refuses with EFBIG (Node ignores SIGXFSZ).
    const child = spawnSync('bash', ['-c', 'ulimit -f 8 && exec "$0" "$1" "$2"', process.execPath, script, logDir], {
      encoding: 'utf8',
    });
    expect(child.stderr).toBe('');
    const out = JSON.parse(child.stdout) as { first: number[]; batch: string[]; later: string };
    expect(out.first).toEqual([1, 2, 3]);
    expect(out.batch).toHaveLength(100);
    for (const b of out.batch) expect(b).toMatch(/^dependency_unavailable audit log unavailable: .*EFBIG/);
    expect(out.later).toBe('dependency_unavailable');
    const onDisk = await readFile(join(logDir, 'fsz.jsonl'), 'utf8');
    expect(onDisk.endsWith('\n')).toBe(false); // the torn write is there, unacknowledged...
    const result = await verifyAuditDir(logDir, { publicKeys: [] });
    expect(result.error).toMatchObject({ file: 'fsz.jsonl', reason: expect.stringMatching(/^truncated record/) }); // ...and verify says so
    expect(result.records).toBeGreaterThanOrEqual(3); // everything acknowledged verifies
  });

  it('refuses a reused writer id, checkpoint records from callers, and appends after close', async () => {
    const dir = await tmp();
    const w = await createAuditWriter({ dir, signer });
    expect(w.writerId).toMatch(/^[A-Za-z0-9_.-]+-\d+-[0-9a-f]{8}$/);
    await expect(createAuditWriter({ dir, writerId: w.writerId, signer })).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(w.append({ kind: 'audit.checkpoint', data: {} })).rejects.toThrow(TypeError);
    await expect(w.append({ kind: 'BAD KIND', data: {} })).rejects.toThrow();
    await w.append({ kind: 'x.y', data: {} }); // a refused input does not break the chain
    await w.close();
    await expect(w.append({ kind: 'x.y', data: {} })).rejects.toMatchObject({ code: 'dependency_unavailable' });
    expect(await verifyAuditDir(dir, { publicKeys: [signer.publicKey] })).toMatchObject({ ok: true, records: 2 });
  });
});
