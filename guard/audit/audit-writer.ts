// The durable half of the audit log. Each writer (one per process start) owns one append-only
// chain `dir/<writerId>.jsonl` and its head file `dir/<writerId>.head.json`; writers never share
// a file, so processes and machines need no lock between them.
//
// Group commit: append() hashes the record at once (seq order = call order) and queues it; one
// flush loop writes everything queued in one write + fdatasync, resolves that batch, and takes
// whatever arrived meanwhile as the next batch. An append resolves only once its line is on
// disk; if a write or sync fails, every queued append rejects and the writer stays failed.
//
// Checkpoints and the head file, and why a crash cannot look like a rollback:
//   The head file holds {checkpoint, next}: `checkpoint` is durable in the chain, `next` is the
//   one being published. Publishing checkpoint C_k goes
//     1. head file := {checkpoint: C_k-1, next: C_k}   (temp file, fsync, rename, fsync dir)
//     2. chain += batch ending with C_k                (write, fdatasync)
//   and the next publication starts with {checkpoint: C_k, next: C_k+1}. A crash before 2 leaves
//   C_k-1 as the chain's last checkpoint, after 2 leaves C_k: either way it is named by the head
//   file, so the verifier's rule "the chain's last checkpoint is the head file's checkpoint or its
//   next" never fires on a crash, and the head file never lags by more than the one checkpoint in
//   flight. close() publishes {checkpoint: C_last, next: null}, sealing the chain completely.
//   The head file is written once (empty) before the first record, so a chain with records but
//   no head file means the head file was removed.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { type AuditCheckpoint, type AuditHeadFile, type AuditInput, type AuditRecord, CHECKPOINT_KIND } from '../../contract/audit.ts';
import { SandgateError } from '../../contract/errors.ts';
import type { AuditSigner } from './audit-signer.ts';
import { appendRecord, type ChainHead, makeCheckpoint, startChain } from './chain.ts';

export interface AuditWriterOptions {
  dir: string;
  /** Defaults to `${hostname}-${pid}-${random}`; must be new: an existing chain is never reopened. */
  writerId?: string;
  signer: AuditSigner;
  checkpointEveryRecords?: number;
  checkpointEveryMs?: number;
  /** Each durable checkpoint is POSTed here as JSON (fire and forget; see onWitnessError). */
  witnessUrl?: string;
  witnessTimeoutMs?: number;
  /** A bigger record is refused (the append rejects; the writer carries on). */
  maxRecordBytes?: number;
  /** After each durable batch, in chain order, checkpoint records included. Must not throw. */
  onDurable?(records: readonly AuditRecord[]): void;
  onWitnessError?(error: unknown, checkpoint: AuditCheckpoint): void;
}

export interface AuditWriterStats {
  records: number;
  checkpoints: number;
  batches: number;
  /** fdatasync calls on the chain file (head-file fsyncs not counted). */
  syncs: number;
}

export interface AuditWriter {
  readonly writerId: string;
  /** Resolves once the record is durable; rejects with SandgateError 'dependency_unavailable' (503) if it cannot be. */
  append(input: AuditInput): Promise<AuditRecord>;
  /** Drains the queue, appends a final checkpoint, seals the head file and closes the file. */
  close(): Promise<void>;
  /** The last durable record. */
  head(): { seq: number; hash: string };
  stats(): AuditWriterStats;
}

interface Queued {
  record: AuditRecord;
  line: string;
  resolve(record: AuditRecord): void;
  reject(error: Error): void;
}

export function defaultWriterId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(-128);
}

const unavailable = (message: string, cause?: unknown): SandgateError => {
  const e = new SandgateError('dependency_unavailable', message);
  if (cause !== undefined) e.cause = cause;
  return e;
};

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeFully(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}

export async function createAuditWriter(opts: AuditWriterOptions): Promise<AuditWriter> {
  const { dir, signer, witnessUrl, onDurable, onWitnessError } = opts;
  const writerId = opts.writerId ?? defaultWriterId();
  const everyRecords = opts.checkpointEveryRecords ?? 1000;
  const everyMs = opts.checkpointEveryMs ?? 1000;
  const maxRecordBytes = opts.maxRecordBytes ?? 1 << 20;
  const witnessTimeoutMs = opts.witnessTimeoutMs ?? 5000;
  const headPath = join(dir, `${writerId}.head.json`);
  const headTmp = join(dir, `.${writerId}.head.json.tmp`);

  async function publishHead(checkpoint: AuditCheckpoint | null, next: AuditCheckpoint | null): Promise<void> {
    const state: AuditHeadFile = { v: 1, writer: writerId, checkpoint, next };
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

  if (await mkdir(dir, { recursive: true, mode: 0o700 })) await syncDir(dirname(dir)); // newly made: its entry too
  // 'ax' = O_APPEND | O_CREAT | O_EXCL: claims the writer id; a chain is never appended to twice.
  const file = await open(join(dir, `${writerId}.jsonl`), 'ax', 0o600);
  try {
    await publishHead(null, null); // its directory sync also makes the new chain file's entry durable
  } catch (e) {
    await file.close();
    throw e;
  }

  let assigned: ChainHead = startChain(writerId); // hashed and queued, maybe not yet durable
  let durable = { seq: 0, hash: assigned.hash };
  let queue: Queued[] = [];
  let running: Promise<void> | null = null;
  let failure: SandgateError | null = null;
  let closing: Promise<void> | null = null;
  let sinceCheckpoint = 0;
  let lastCheckpointAt = Date.now();
  let lastCheckpoint: AuditCheckpoint | null = null; // durable in the chain
  let forceCheckpoint = false;
  let timer: NodeJS.Timeout | null = null;
  const witnessPosts = new Set<Promise<void>>();
  const stats: AuditWriterStats = { records: 0, checkpoints: 0, batches: 0, syncs: 0 };

  const checkpointDue = (): boolean =>
    sinceCheckpoint > 0 && (forceCheckpoint || sinceCheckpoint >= everyRecords || Date.now() - lastCheckpointAt >= everyMs);

  function armTimer(): void {
    if (timer || closing || failure || sinceCheckpoint === 0) return;
    timer = setTimeout(
      () => {
        timer = null;
        schedule();
      },
      Math.max(0, lastCheckpointAt + everyMs - Date.now()),
    );
    timer.unref(); // a pending checkpoint must not keep the process alive; close() writes it
  }

  function fail(error: unknown, batch: Queued[]): void {
    failure = unavailable(`audit log unavailable: ${(error as Error).message ?? error}`, error);
    const pending = [...batch, ...queue];
    queue = [];
    if (timer) clearTimeout(timer);
    timer = null;
    for (const q of pending) q.reject(failure);
  }

  function witness(checkpoint: AuditCheckpoint): void {
    if (!witnessUrl) return;
    const post = fetch(witnessUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(checkpoint),
      signal: AbortSignal.timeout(witnessTimeoutMs),
    })
      .then(async (res) => {
        await res.body?.cancel();
        if (!res.ok) throw new Error(`witness answered ${res.status}`);
      })
      .catch((e: unknown) => {
        if (onWitnessError) onWitnessError(e, checkpoint);
        else process.emitWarning(`audit witness: ${(e as Error).message}`);
      })
      .finally(() => witnessPosts.delete(post));
    witnessPosts.add(post);
  }

  async function flushOnce(): Promise<void> {
    const batch = queue;
    queue = [];
    const lines = batch.map((q) => q.line);
    const records = batch.map((q) => q.record);
    let checkpoint: AuditCheckpoint | null = null;
    try {
      if (checkpointDue()) {
        // At most one checkpoint per batch, at its end: it covers everything before it.
        const made = makeCheckpoint(assigned, signer);
        const sealed = appendRecord(assigned, made.input);
        assigned = sealed.head;
        checkpoint = made.checkpoint;
        sinceCheckpoint = 0;
        lastCheckpointAt = Date.now();
        lines.push(sealed.line);
        records.push(sealed.record);
      }
      if (checkpoint) await publishHead(lastCheckpoint, checkpoint); // step 1 of the ordering note
      await writeFully(file, Buffer.from(`${lines.join('\n')}\n`));
      await file.datasync();
    } catch (e) {
      fail(e, batch);
      return;
    }
    stats.batches++;
    stats.syncs++;
    stats.records += batch.length;
    const last = records[records.length - 1]!;
    durable = { seq: last.seq, hash: last.hash };
    if (checkpoint) {
      stats.checkpoints++;
      lastCheckpoint = checkpoint;
      witness(checkpoint);
    }
    for (const q of batch) q.resolve(q.record);
    if (onDurable) {
      try {
        onDurable(records);
      } catch (e) {
        process.emitWarning(`audit onDurable threw: ${(e as Error).message}`);
      }
    }
    armTimer();
  }

  function schedule(): void {
    if (running || failure) return;
    running = (async () => {
      await null; // appends made in the same tick join the first batch
      try {
        while (!failure && (queue.length > 0 || checkpointDue())) await flushOnce();
      } catch (e) {
        fail(e, []); // a bug, not I/O: still never leave an append hanging
      } finally {
        running = null;
        armTimer(); // also re-arms a timer that fired a little early
      }
    })();
  }

  async function drain(): Promise<void> {
    while (running) await running;
  }

  return {
    writerId,
    append(input) {
      if (failure) return Promise.reject(failure);
      if (closing) return Promise.reject(unavailable('audit writer is closed'));
      if (input.kind === CHECKPOINT_KIND) return Promise.reject(new TypeError(`${CHECKPOINT_KIND} records are the writer's own`));
      let sealed: ReturnType<typeof appendRecord>;
      try {
        sealed = appendRecord(assigned, input);
      } catch (e) {
        return Promise.reject(e);
      }
      if (Buffer.byteLength(sealed.line) > maxRecordBytes) {
        return Promise.reject(new RangeError(`audit record over ${maxRecordBytes} bytes`));
      }
      assigned = sealed.head;
      sinceCheckpoint++;
      return new Promise<AuditRecord>((resolve, reject) => {
        queue.push({ record: sealed.record, line: sealed.line, resolve, reject });
        schedule();
        armTimer();
      });
    },
    close() {
      closing ??= (async () => {
        if (timer) clearTimeout(timer);
        timer = null;
        try {
          await drain();
          forceCheckpoint = true; // the final checkpoint is the "closed cleanly" marker
          schedule();
          await drain();
          if (!failure && lastCheckpoint) await publishHead(lastCheckpoint, null);
        } finally {
          await file.close();
          await Promise.allSettled([...witnessPosts]);
        }
      })();
      return closing;
    },
    head: () => ({ ...durable }),
    stats: () => ({ ...stats }),
  };
}
