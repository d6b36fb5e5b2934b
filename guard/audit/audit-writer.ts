// The durable half of the audit log. Each writer (one per process start) owns one append-only
// chain `dir/<writerId>.jsonl` and its head file `dir/<writerId>.head.json`; writers never share
// a file, so processes and machines need no lock between them.
//
// Group commit: append() hashes the record at once (seq order = call order) and queues it; one
// flush loop writes everything queued (up to a second checkpoint) in one durable write (O_DSYNC),
// resolves that batch, and takes whatever arrived meanwhile as the next batch. An append resolves only once its line is on
// disk; if a write or sync fails, every queued append rejects and the writer stays failed.
//
// Where checkpoints go is decided when records are sequenced, not when they are flushed, so the
// rule the verifier enforces holds however slow the disk or the event loop is (no grace needed):
//   - right after the everyRecords-th record since the last checkpoint: no run is longer; and
//   - before a record whose own timestamp is everyMs or more after the first record of its run:
//     no run spans everyMs by the records' own times. A timer also ends a run everyMs after it
//     began, so an idle writer's last records are signed (and witnessed) within everyMs.
// Each checkpoint signs the writer, its position, the chain hash, that interval and whether it
// closes the chain (see chain.ts). The opening checkpoint (upToSeq 0) goes into the head file before
// the first record, so a chain with records whose head file names no checkpoint was forged; and
// close() always appends a closing one (closed: true), so a clean close cannot be faked.
//
// The head file, and why a crash cannot look like a rollback:
//   The head file holds {checkpoint, next}: `checkpoint` is durable in the chain (or the opening
//   one), `next` is the one being published. Publishing checkpoint C_k goes
//     1. head file := {checkpoint: C_k-1, next: C_k}   (temp file, fsync, rename, fsync dir)
//     2. chain += batch holding C_k                    (write, O_DSYNC)
//   A batch holds at most one checkpoint (it ends before a second), so a crash, even one that
//   tears the write, leaves C_k-1 or C_k as the chain's last checkpoint: either way it is named
//   by the head file, and the verifier's rule "the chain's last checkpoint is the head file's
//   checkpoint or its next" never fires on a crash. close() ends with {checkpoint: C_close, next:
//   null}. The chain file is claimed before the head file is first written, so a chain with
//   records but no head file means the head file was removed.
//
// Segments (segments.ts): past segmentMaxBytes or segmentMaxAgeMs the writer seals its segment
// with a checkpoint signed for that segment and opens `<writer>~<n+1>.jsonl` with a checkpoint
// signed for the new one, over the sealing record: seq and prev run on, so the verifier finds a
// removed, truncated, reordered or renamed segment. Like checkpoints, rotation is decided when
// records are sequenced; a batch never spans two segments, so the head-file order above holds
// across a rotation and a crash anywhere in it leaves a chain that verifies. With an archive
// directory, sealed segments beyond `liveSegments` (or older than liveMaxAgeMs) move there in
// the background, and close() moves the rest and the head file after them.
import { randomBytes } from 'node:crypto';
import { constants as fs } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type AuditCheckpoint,
  type AuditHeadFile,
  type AuditInput,
  type AuditRecord,
  CHECKPOINT_KIND,
} from '../../contract/audit.ts';
import { SandgateError } from '../../contract/errors.ts';
import type { AuditSigner } from './audit-signer.ts';
import { createWitnessPoster } from './audit-witness.ts';
import { createBatchWriter, DEFAULT_OFF_LOOP_FOR_MS, DEFAULT_ON_LOOP_MAX_MS } from './batch-write.ts';
import { appendRecord, type ChainHead, makeCheckpoint, startChain } from './chain.ts';
import { moveDurably, segmentName, sweepSilentWriters, syncDir } from './segments.ts';

export interface AuditWriterOptions {
  dir: string;
  /** Defaults to `${hostname}-${pid}-${random}`; must be new: an existing chain is never reopened. */
  writerId?: string;
  signer: AuditSigner;
  /** Signed into every checkpoint and enforced by the verifier: at most this many records without one. */
  checkpointEveryRecords?: number;
  /** …and no record this many ms (by record timestamps) after the first one since the last checkpoint. */
  checkpointEveryMs?: number;
  /** Each durable checkpoint is POSTed here as JSON (fire and forget; see onWitnessError). */
  witnessUrl?: string;
  witnessTimeoutMs?: number;
  /** A bigger record is refused (the append rejects; the writer carries on). */
  maxRecordBytes?: number;
  /** After each durable batch, in chain order, checkpoint records included. Must not throw. */
  onDurable?(records: readonly AuditRecord[]): void;
  onWitnessError?(error: unknown, checkpoint: AuditCheckpoint): void;
  /** Seal the segment once it holds this many bytes (0 or absent: never by size). */
  segmentMaxBytes?: number;
  /** …or once its first record is this old (0 or absent: never by age). */
  segmentMaxAgeMs?: number;
  /** Sealed segments move here (another mount); absent: they stay in `dir`. */
  archiveDir?: string;
  /** Sealed segments kept in `dir` before they move to the archive. */
  liveSegments?: number;
  /** …and a sealed segment older than this moves regardless (0 or absent: no age limit). */
  liveMaxAgeMs?: number;
  /** A move to the archive failed; it is tried again at the next rotation and at close. Must not throw. */
  onArchiveError?(error: unknown): void;
  /** At start, other writers' sealed segments move to the archive once their newest segment is this old (default 1 h). */
  sweepSilentAfterMs?: number;
  /**
   * Batches are written on the event loop while writes take at most this many ms on average (see
   * batch-write.ts); past it the next minute's go to the thread pool. 0: always there. Default
   * DEFAULT_ON_LOOP_MAX_MS.
   */
  onLoopWriteMaxMs?: number;
  /** Writes left the event loop after one that took `ms` (for the log). Must not throw. */
  onSlowWrite?(ms: number): void;
}

export interface AuditWriterStats {
  records: number;
  checkpoints: number;
  batches: number;
  /** Durable writes of a batch to the chain file (O_DSYNC; head-file fsyncs not counted). */
  syncs: number;
  /** Segments sealed, and sealed segments moved to the archive. */
  rotations: number;
  archived: number;
  /** Of the syncs, those written on the event loop and those sent to the thread pool (batch-write.ts). */
  onLoopWrites: number;
  offLoopWrites: number;
}

export interface AppendOptions {
  /** Written with the next batch, or within LAZY_FLUSH_MS (within this many ms when a number). */
  lazy?: boolean | number;
}

export interface AuditWriter {
  readonly writerId: string;
  /**
   * Resolves once the record is durable; rejects with SandgateError 'dependency_unavailable' (503) if it cannot be.
   * `lazy` (a record nobody waits on before acting, such as a run's start): sequenced at once like
   * any other, but it starts no write of its own; it joins the next record's batch, or is
   * written after LAZY_FLUSH_MS (or after `lazy` ms when a number, if sooner), so a run's start
   * and end cost one durable write, not two.
   */
  append(input: AuditInput, opts?: AppendOptions): Promise<AuditRecord>;
  /**
   * append(), with the record's id at once: it is sequenced now (its id and place in the chain are
   * final), durable once `durable` resolves. For work that writes the id next to the record while
   * the record is being made durable, and acts only once both are done (never before `durable`).
   */
  begin(input: AuditInput, opts?: AppendOptions): { id: string | undefined; durable: Promise<AuditRecord> };
  /** Drains the queue, appends the signed closing checkpoint, seals the head file and closes the file. */
  close(): Promise<void>;
  /** The last durable record. */
  head(): { seq: number; hash: string };
  stats(): AuditWriterStats;
}

interface Queued {
  record: AuditRecord;
  line: string;
  /** Set on the writer's own checkpoint records, which nobody awaits. */
  checkpoint?: AuditCheckpoint;
  /** The segment the record belongs to. */
  segment: number;
  resolve?(record: AuditRecord): void;
  reject?(error: Error): void;
}

export const DEFAULT_CHECKPOINT_EVERY_RECORDS = 1000;
export const DEFAULT_CHECKPOINT_EVERY_MS = 1000;
/** The longest a lazy record waits for a batch to join before it is written on its own. */
export const LAZY_FLUSH_MS = 25;

export function defaultWriterId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(-128);
}

const unavailable = (message: string, cause?: unknown): SandgateError => {
  const e = new SandgateError('dependency_unavailable', message);
  if (cause !== undefined) e.cause = cause;
  return e;
};

const positiveInt = (name: string, v: number): number => {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer`);
  return v;
};
const nonNegativeInt = (name: string, v: number): number => (v === 0 ? 0 : positiveInt(name, v));

/**
 * A chain file: O_APPEND | O_CREAT | O_EXCL claims the writer id (a chain is never appended to
 * twice); O_DSYNC makes every write durable before it returns (a batch is one write).
 */
const CHAIN_FILE_FLAGS = fs.O_WRONLY | fs.O_APPEND | fs.O_CREAT | fs.O_EXCL | fs.O_DSYNC;

export async function createAuditWriter(opts: AuditWriterOptions): Promise<AuditWriter> {
  const { dir, signer, onDurable } = opts;
  const writerId = opts.writerId ?? defaultWriterId();
  const everyRecords = positiveInt(
    'checkpointEveryRecords',
    opts.checkpointEveryRecords ?? DEFAULT_CHECKPOINT_EVERY_RECORDS,
  );
  const everyMs = positiveInt('checkpointEveryMs', opts.checkpointEveryMs ?? DEFAULT_CHECKPOINT_EVERY_MS);
  const terms = { everyRecords, everyMs };
  const segmentMaxBytes = nonNegativeInt('segmentMaxBytes', opts.segmentMaxBytes ?? 0);
  const segmentMaxAgeMs = nonNegativeInt('segmentMaxAgeMs', opts.segmentMaxAgeMs ?? 0);
  const liveSegments = nonNegativeInt('liveSegments', opts.liveSegments ?? 2);
  const liveMaxAgeMs = nonNegativeInt('liveMaxAgeMs', opts.liveMaxAgeMs ?? 0);
  const { archiveDir } = opts;
  const maxRecordBytes = opts.maxRecordBytes ?? 1 << 20;
  const witness = createWitnessPoster(opts.witnessUrl, opts.witnessTimeoutMs ?? 5000, opts.onWitnessError);
  const headPath = join(dir, `${writerId}.head.json`);
  const headTmp = join(dir, `.${writerId}.head.json.tmp`);

  async function publishHead(checkpoint: AuditCheckpoint, next: AuditCheckpoint | null): Promise<void> {
    const state: AuditHeadFile = { v: 2, writer: writerId, checkpoint, next };
    const fh = await open(headTmp, 'w', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(state)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(headTmp, headPath);
    await syncDir(dir); // the rename must be durable before the chain names the checkpoint
  }

  const opening = makeCheckpoint(startChain(writerId), signer, { closed: false, ...terms }).checkpoint;
  if (await mkdir(dir, { recursive: true, mode: 0o700 })) await syncDir(dirname(dir)); // newly made: its entry too
  if (archiveDir) await mkdir(archiveDir, { recursive: true, mode: 0o700 });
  let file = await open(join(dir, segmentName(writerId, 0)), CHAIN_FILE_FLAGS, 0o600);
  let fileSegment = 0;
  try {
    await publishHead(opening, null); // its directory sync also makes the new chain file's entry durable
  } catch (e) {
    await file.close();
    throw e;
  }
  witness.post(opening); // the witness learns of the chain before it holds anything
  // A writer killed before its close left sealed segments live: the next process start moves them on.
  const swept =
    archiveDir === undefined
      ? Promise.resolve()
      : sweepSilentWriters(dir, archiveDir, {
          except: writerId,
          silentMs: opts.sweepSilentAfterMs ?? 3_600_000,
        }).then(
          () => {},
          (e) => opts.onArchiveError?.(e),
        );

  let assigned: ChainHead = startChain(writerId); // hashed and queued, maybe not yet durable
  let durable = { seq: 0, hash: assigned.hash };
  let queue: Queued[] = [];
  let running: Promise<void> | null = null;
  let failure: SandgateError | null = null;
  let closing: Promise<void> | null = null;
  let run: { count: number; startMs: number } | null = null; // the records since the last checkpoint
  let lastCheckpoint: AuditCheckpoint = opening; // durable in the chain (or the opening one)
  let timer: NodeJS.Timeout | null = null;
  const stats = { records: 0, checkpoints: 0, batches: 0, syncs: 0, rotations: 0, archived: 0 };
  const batchWriter = createBatchWriter({
    onLoopMaxMs: opts.onLoopWriteMaxMs ?? DEFAULT_ON_LOOP_MAX_MS,
    offLoopForMs: DEFAULT_OFF_LOOP_FOR_MS,
    ...(opts.onSlowWrite && { onSlow: opts.onSlowWrite }),
  });
  // The segment being assigned to: its index, bytes, records (checkpoints aside) and start.
  const seg = { index: 0, bytes: 0, records: 0, startMs: Date.now() };
  const sealedLive: Array<{ index: number; sealedAtMs: number }> = []; // durable, sealed, still in `dir`
  let archiving: Promise<void> = swept;

  /** Ends the current run with a checkpoint, queued after everything assigned so far. */
  function cut(closed: boolean): void {
    const made = makeCheckpoint(assigned, signer, { closed, ...terms, segment: seg.index });
    const sealed = appendRecord(assigned, made.input);
    assigned = sealed.head;
    seg.bytes += Buffer.byteLength(sealed.line) + 1;
    queue.push({ record: sealed.record, line: sealed.line, checkpoint: made.checkpoint, segment: seg.index });
    run = null;
    if (timer) clearTimeout(timer);
    timer = null;
  }

  const rotationDue = (nowMs: number): boolean =>
    seg.records > 0 &&
    ((segmentMaxBytes > 0 && seg.bytes >= segmentMaxBytes) ||
      (segmentMaxAgeMs > 0 && nowMs - seg.startMs >= segmentMaxAgeMs));

  /** Seals the segment with its own checkpoint and opens the next with one over the seal. */
  function rotate(nowMs: number): void {
    cut(false);
    Object.assign(seg, { index: seg.index + 1, bytes: 0, records: 0, startMs: nowMs });
    cut(false);
  }

  /** Moves what retention lets go to the archive, oldest first; a failure is retried next time. */
  function archive(all: boolean): Promise<void> {
    if (!archiveDir) return archiving;
    archiving = archiving.then(async () => {
      const now = Date.now();
      while (sealedLive.length > 0) {
        const oldest = sealedLive[0]!;
        const keep =
          !all && sealedLive.length <= liveSegments && (liveMaxAgeMs === 0 || now - oldest.sealedAtMs < liveMaxAgeMs);
        if (keep) return;
        try {
          await moveDurably(dir, archiveDir, segmentName(writerId, oldest.index));
        } catch (e) {
          opts.onArchiveError?.(e);
          return;
        }
        sealedLive.shift();
        stats.archived++;
      }
    });
    return archiving;
  }

  // Age limits need a clock as well as appends: an idle writer still seals and archives.
  const ageTick = Math.min(segmentMaxAgeMs || Infinity, liveMaxAgeMs || Infinity, 60_000);
  const ageTimer =
    (segmentMaxAgeMs > 0 || (archiveDir && liveMaxAgeMs > 0)) && Number.isFinite(ageTick)
      ? setInterval(
          () => {
            if (closing || failure) return;
            if (rotationDue(Date.now())) {
              rotate(Date.now());
              schedule();
            }
            void archive(false);
          },
          Math.max(ageTick, 50),
        )
      : null;
  ageTimer?.unref();

  function armTimer(): void {
    if (timer || !run || closing || failure) return;
    timer = setTimeout(
      () => {
        timer = null;
        if (!run || closing || failure) return;
        cut(false);
        schedule();
      },
      Math.max(0, run.startMs + everyMs - Date.now()),
    );
    timer.unref(); // a pending checkpoint must not keep the process alive; close() writes one
  }

  function fail(error: unknown, batch: Queued[]): void {
    failure = unavailable(`audit log unavailable: ${(error as Error).message ?? error}`, error);
    const pending = [...batch, ...queue];
    queue = [];
    if (timer) clearTimeout(timer);
    timer = null;
    for (const q of pending) q.reject?.(failure);
  }

  async function flushOnce(): Promise<void> {
    // The batch ends before a second checkpoint (see the ordering note) and before another segment.
    let end = 0;
    let checkpoint: AuditCheckpoint | undefined;
    const segment = queue[0]!.segment;
    for (; end < queue.length; end++) {
      const cp = queue[end]!.checkpoint;
      if ((cp && checkpoint) || queue[end]!.segment !== segment) break;
      checkpoint ??= cp;
    }
    const batch = end === queue.length ? queue : queue.slice(0, end);
    queue = end === queue.length ? [] : queue.slice(end);
    try {
      if (segment !== fileSegment) {
        // The previous segment ends with its durable seal; the new one's entry is made durable
        // by publishHead's directory sync below (its batch opens with a checkpoint).
        await file.close();
        file = await open(join(dir, segmentName(writerId, segment)), CHAIN_FILE_FLAGS, 0o600);
        sealedLive.push({ index: fileSegment, sealedAtMs: Date.now() });
        fileSegment = segment;
        stats.rotations++;
        void archive(false);
      }
      if (checkpoint) await publishHead(lastCheckpoint, checkpoint); // step 1 of the ordering note
      // O_DSYNC: each write returns once its data is durable, as write + fdatasync would, in one
      // call (on the event loop while the disk is fast, else one trip to the thread pool).
      await batchWriter.write(file, Buffer.from(`${batch.map((q) => q.line).join('\n')}\n`));
    } catch (e) {
      fail(e, batch);
      return;
    }
    stats.batches++;
    stats.syncs++;
    stats.records += checkpoint ? batch.length - 1 : batch.length;
    const last = batch[batch.length - 1]!.record;
    durable = { seq: last.seq, hash: last.hash };
    if (checkpoint) {
      stats.checkpoints++;
      lastCheckpoint = checkpoint;
      witness.post(checkpoint);
    }
    for (const q of batch) q.resolve?.(q.record);
    if (onDurable) {
      try {
        onDurable(batch.map((q) => q.record));
      } catch (e) {
        process.emitWarning(`audit onDurable threw: ${(e as Error).message}`);
      }
    }
  }

  function schedule(): void {
    if (lazyTimer) clearTimeout(lazyTimer);
    lazyTimer = null;
    if (running || failure) return;
    running = (async () => {
      await null; // appends made in the same tick join the first batch
      try {
        while (!failure && queue.length > 0) await flushOnce();
      } catch (e) {
        fail(e, []); // a bug, not I/O: still never leave an append hanging
      } finally {
        running = null;
      }
    })();
  }

  /** A lazy record is written with the next batch, or at the latest `withinMs` from now. */
  let lazyTimer: NodeJS.Timeout | null = null;
  let lazyDue = 0;
  function scheduleLazy(withinMs: number): void {
    if (running) return; // a running flush loop takes it with whatever it writes next
    const due = performance.now() + withinMs;
    if (lazyTimer && lazyDue <= due) return; // an earlier write is already due
    if (lazyTimer) clearTimeout(lazyTimer);
    lazyDue = due;
    lazyTimer = setTimeout(() => {
      lazyTimer = null;
      schedule();
    }, withinMs);
    lazyTimer.unref();
  }

  async function drain(): Promise<void> {
    while (running) await running;
  }

  const refused = (e: unknown) => ({ id: undefined, durable: Promise.reject(e) });

  function begin(input: AuditInput, opts?: AppendOptions): ReturnType<AuditWriter['begin']> {
    if (failure) return refused(failure);
    if (closing) return refused(unavailable('audit writer is closed'));
    if (input.kind === CHECKPOINT_KIND)
      return refused(new TypeError(`${CHECKPOINT_KIND} records are the writer's own`));
    const now = new Date();
    let sealed: ReturnType<typeof appendRecord>;
    try {
      sealed = appendRecord(assigned, input, now); // validates before anything is cut
      if (rotationDue(now.getTime())) {
        rotate(now.getTime());
        sealed = appendRecord(assigned, input, now);
      }
      // The time rule, by the record's own timestamp: it may not join a run begun everyMs before it.
      if (run && now.getTime() - run.startMs >= everyMs) {
        cut(false);
        sealed = appendRecord(assigned, input, now);
      }
    } catch (e) {
      return refused(e);
    }
    if (Buffer.byteLength(sealed.line) > maxRecordBytes) {
      return refused(new RangeError(`audit record over ${maxRecordBytes} bytes`));
    }
    const { record, line, head } = sealed;
    assigned = head;
    seg.bytes += Buffer.byteLength(line) + 1;
    seg.records++;
    run ??= { count: 0, startMs: now.getTime() };
    run.count++;
    const durable = new Promise<AuditRecord>((resolve, reject) => {
      queue.push({ record, line, segment: seg.index, resolve, reject });
      if (run && run.count >= everyRecords) cut(false); // the count rule: right after the last record it allows
      if (opts?.lazy) scheduleLazy(typeof opts.lazy === 'number' ? Math.min(opts.lazy, LAZY_FLUSH_MS) : LAZY_FLUSH_MS);
      else schedule();
      armTimer();
    });
    return { id: record.id, durable };
  }

  return {
    writerId,
    append: (input, opts) => begin(input, opts).durable,
    begin,
    close() {
      closing ??= (async () => {
        if (timer) clearTimeout(timer);
        timer = null;
        if (lazyTimer) clearTimeout(lazyTimer);
        lazyTimer = null;
        if (ageTimer) clearInterval(ageTimer);
        try {
          if (!failure) {
            cut(true); // the signed "closed cleanly" marker, even if nothing is new since the last checkpoint
            schedule();
          }
          await drain();
          if (!failure) await publishHead(lastCheckpoint, null);
        } finally {
          await file.close();
          await witness.settle();
        }
        if (!failure && archiveDir) {
          // The closed chain outlives the pod: every segment, then the head file that names its end.
          sealedLive.push({ index: fileSegment, sealedAtMs: Date.now() });
          await archive(true);
          if (sealedLive.length === 0) {
            await moveDurably(dir, archiveDir, `${writerId}.head.json`).catch((e) => opts.onArchiveError?.(e));
          }
        }
      })();
      return closing;
    },
    head: () => ({ ...durable }),
    stats: (): AuditWriterStats => {
      const { onLoop, offLoop } = batchWriter.counts();
      return { ...stats, onLoopWrites: onLoop, offLoopWrites: offLoop };
    },
  };
}
