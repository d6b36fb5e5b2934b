// Forgeries of the audit log that need no key. The forger holds every file of the audit
// directory and the public key, not the signing key: each forged directory below is built from
// real writer output (real writer, real key), then rewritten with test/helpers/audit-forge.ts
// alone, and must fail verify with a reason that names the forgery. The last block checks the
// other side: every state a real writer can leave behind (killed at any line, idle, stalled,
// closed) still verifies, so the rules cannot be bought with false alarms.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditCheckpoint, AuditRecord } from '../../contract/audit.ts';
import { generateAuditSigner } from '../../guard/audit/audit-signer.ts';
import { verifyAuditDir } from '../../guard/audit/audit-verify.ts';
import { type AuditWriter, createAuditWriter } from '../../guard/audit/audit-writer.ts';
import {
  checkpointOf,
  isCheckpoint,
  readHead,
  readRecords,
  relink,
  snapshot,
  tempDirs,
  writeChain,
  writeHead,
  writeLines,
} from '../helpers/audit-forge.ts';

const signer = generateAuditSigner();
const dirs = tempDirs();
afterAll(() => dirs.cleanup());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const verify = (dir: string, witnessCheckpoints?: AuditCheckpoint[]) =>
  verifyAuditDir(dir, { publicKeys: [signer.publicKeyPem], witnessCheckpoints });

// base: writers a (23 records) and b (12), both every 5 records, closed. a's chain is
//   seq 1-5, C6 (upTo 5), 7-11, C12 (11), 13-17, C18 (17), 19-23, C24 (23), 25-27, C28 (27, closed)
// snapA: a as it was after its 13th record (chain to seq 15, head file {C5, C11}), a crash state.
// timed: writer t, every 100 ms, records 45 ms apart; snapT after its 5th record.
// big: writer d with the defaults (1000 records / 1 s), 1500 records.
let base: string;
let snapA: string;
let timed: string;
let snapT: string;
let big: string;
let A: AuditRecord[];
let B: AuditRecord[];
let T: AuditRecord[];
let D: AuditRecord[];
let opening: Record<'a' | 'b' | 't' | 'd', AuditCheckpoint>;
let witnessA: AuditCheckpoint[];
const cps = (rs: AuditRecord[]) => rs.filter(isCheckpoint).map(checkpointOf);
const records = (rs: AuditRecord[]) => rs.filter((r) => !isCheckpoint(r));
const append = (w: AuditWriter, i: number) =>
  w.append({ kind: 'execution.requested', agentId: 'ag_1', taskId: 't1', subject: `ex_${i}`, data: { i } });
const forged = (like: AuditRecord, n: number): AuditRecord[] =>
  Array.from({ length: n }, (_, i) => ({
    ...like,
    kind: 'approval.decided',
    subject: `forged_${i}`,
    data: { decision: 'approve', by: 'nobody' },
  }));

beforeAll(async () => {
  base = await dirs.make('audit-base-');
  snapA = await dirs.make('audit-snap-a-');
  timed = await dirs.make('audit-timed-');
  snapT = await dirs.make('audit-snap-t-');
  big = await dirs.make('audit-big-');
  witnessA = [];
  const slow = { signer, checkpointEveryRecords: 5, checkpointEveryMs: 60_000 };
  const a = await createAuditWriter({
    ...slow,
    dir: base,
    writerId: 'a',
    onDurable: (rs) => witnessA.push(...cps([...rs])),
  });
  const openA = (await readHead(base, 'a')).checkpoint!;
  for (let i = 0; i < 23; i++) {
    await append(a, i);
    if (i === 12) await snapshot(base, 'a', snapA);
  }
  await a.close();
  const b = await createAuditWriter({ ...slow, dir: base, writerId: 'b' });
  const openB = (await readHead(base, 'b')).checkpoint!;
  for (let i = 0; i < 12; i++) await append(b, i);
  await b.close();
  const t = await createAuditWriter({
    dir: timed,
    writerId: 't',
    signer,
    checkpointEveryRecords: 1000,
    checkpointEveryMs: 100,
  });
  const openT = (await readHead(timed, 't')).checkpoint!;
  for (let i = 0; i < 10; i++) {
    await append(t, i);
    if (i === 4) await snapshot(timed, 't', snapT);
    await sleep(45);
  }
  await t.close();
  const d = await createAuditWriter({ dir: big, writerId: 'd', signer });
  const openD = (await readHead(big, 'd')).checkpoint!;
  await Promise.all(Array.from({ length: 1500 }, (_, i) => append(d, i)));
  await d.close();
  opening = { a: openA, b: openB, t: openT, d: openD };
  [A, B, T, D] = await Promise.all([
    readRecords(base, 'a'),
    readRecords(base, 'b'),
    readRecords(timed, 't'),
    readRecords(big, 'd'),
  ]);
});

/** A copy of `from` in which `forge` rewrote files; verify must fail with `error`. */
async function expectCaught(
  from: string,
  forge: (dir: string) => Promise<unknown>,
  error: Record<string, unknown>,
  label: string,
): Promise<void> {
  const dir = await dirs.copyOf(from);
  await forge(dir);
  const result = await verify(dir);
  expect(result.ok, label).toBe(false);
  expect(result.error, label).toMatchObject(error);
}

const runBreach = (from: number, to: number, every: number) =>
  `no signed checkpoint within records ${from}..${to} (the writer checkpoints every ${every} records): checkpoints stripped or records added`;
const timeBreach =
  /^no signed checkpoint within records \d+\.\.\d+, \d+\.\d{3} s apart by their timestamps \(the writer checkpoints every 100 ms\)/;

describe('the fixtures, untouched', () => {
  it('verify, and have checkpoints where the rules put them', async () => {
    expect(await verify(base)).toMatchObject({
      ok: true,
      chains: 2,
      records: 28 + 15,
      head: { a: { seq: 28, closed: true }, b: { seq: 15, closed: true } },
    });
    expect(cps(A).map((c) => [c.upToSeq, c.closed])).toEqual([
      [5, false],
      [11, false],
      [17, false],
      [23, false],
      [27, true],
    ]);
    expect(await verify(snapA)).toMatchObject({ ok: true, records: 15, head: { a: { seq: 15, closed: false } } });
    expect(await readHead(snapA, 'a')).toMatchObject({ checkpoint: { upToSeq: 5 }, next: { upToSeq: 11 } });
    expect(await verify(timed)).toMatchObject({ ok: true, head: { t: { closed: true } } });
    expect(cps(T).length).toBeGreaterThanOrEqual(4); // 10 records over ~450 ms, every 100 ms
    expect(await verify(snapT)).toMatchObject({ ok: true });
    expect(await verify(big)).toMatchObject({ ok: true, records: 1502 });
    expect(cps(D).map((c) => c.upToSeq)).toEqual([1000, 1501]);
  });
});

describe('forgeries that need no key', () => {
  it('every checkpoint stripped and the hashes re-linked, whatever head file goes with it', async () => {
    const cases: Array<[string, string, (d: string) => Promise<unknown>, Record<string, unknown>]> = [
      [
        'a, genuine head file',
        base,
        (d) => writeChain(d, 'a', records(A)),
        { file: 'a.jsonl', line: 6, id: 'a:6', reason: runBreach(1, 6, 5) },
      ],
      [
        'a, the opening head file',
        base,
        async (d) => {
          await writeChain(d, 'a', records(A));
          await writeHead(d, 'a', opening.a);
        },
        { file: 'a.jsonl', line: 6, reason: runBreach(1, 6, 5) },
      ],
      [
        'a, head file naming no checkpoint',
        base,
        async (d) => {
          await writeChain(d, 'a', records(A));
          await writeHead(d, 'a', null);
        },
        {
          file: 'a.head.json',
          line: 1,
          reason: expect.stringMatching(/^head file names no checkpoint: the writer signs its opening checkpoint/),
        },
      ],
      [
        'a, head file deleted',
        base,
        async (d) => {
          await writeChain(d, 'a', records(A));
          await rm(join(d, 'a.head.json'));
        },
        { file: 'a.head.json', reason: expect.stringMatching(/^head file missing/) },
      ],
      [
        'b, head file {opening, first}',
        base,
        async (d) => {
          await writeChain(d, 'b', records(B));
          await writeHead(d, 'b', opening.b, cps(B)[0]!);
        },
        { file: 'b.jsonl', line: 6, reason: runBreach(1, 6, 5) },
      ],
      [
        'd, the default 1000 records',
        big,
        async (d) => {
          await writeChain(d, 'd', records(D));
          await writeHead(d, 'd', opening.d);
        },
        { file: 'd.jsonl', line: 1001, id: 'd:1001', reason: runBreach(1, 1001, 1000) },
      ],
      [
        't, by the records own timestamps',
        timed,
        async (d) => {
          await writeChain(d, 't', records(T));
          await writeHead(d, 't', opening.t);
        },
        { file: 't.jsonl', reason: expect.stringMatching(timeBreach) },
      ],
      [
        'a, checkpoint lines deleted without re-linking',
        base,
        (d) =>
          writeLines(
            d,
            'a',
            relink('a', A).filter((_, i) => !isCheckpoint(A[i]!)),
          ),
        { file: 'a.jsonl', line: 6, reason: 'seq out of order: expected 6, found 7' },
      ],
    ];
    for (const [label, from, forge, error] of cases) await expectCaught(from, forge, error, label);
  });

  it('the later checkpoints stripped, the first kept, re-linked: the tail is longer than one interval', async () => {
    const keepFirst = (rs: AuditRecord[], keep: number) => {
      let seen = 0;
      return rs.filter((r) => !isCheckpoint(r) || ++seen <= keep);
    };
    const cases: Array<[string, string, (d: string) => Promise<unknown>, Record<string, unknown>]> = [
      [
        'a keeps C5, head {opening, C5}',
        base,
        async (d) => {
          await writeChain(d, 'a', keepFirst(A, 1));
          await writeHead(d, 'a', opening.a, cps(A)[0]!);
        },
        { file: 'a.jsonl', line: 12, id: 'a:12', reason: runBreach(7, 12, 5) },
      ],
      [
        'a keeps C5, genuine head file',
        base,
        (d) => writeChain(d, 'a', keepFirst(A, 1)),
        { line: 12, reason: runBreach(7, 12, 5) },
      ],
      [
        'a keeps C5 and C11, head {C5, C11}',
        base,
        async (d) => {
          await writeChain(d, 'a', keepFirst(A, 2));
          await writeHead(d, 'a', cps(A)[0]!, cps(A)[1]!);
        },
        { line: 18, reason: runBreach(13, 18, 5) },
      ],
      [
        'b keeps C5, head {C5} as if closed',
        base,
        async (d) => {
          await writeChain(d, 'b', keepFirst(B, 1));
          await writeHead(d, 'b', cps(B)[0]!);
        },
        { file: 'b.jsonl', line: 12, reason: runBreach(7, 12, 5) },
      ],
      [
        't keeps its first checkpoint',
        timed,
        async (d) => {
          await writeChain(d, 't', keepFirst(T, 1));
          await writeHead(d, 't', opening.t, cps(T)[0]!);
        },
        { file: 't.jsonl', reason: expect.stringMatching(timeBreach) },
      ],
    ];
    for (const [label, from, forge, error] of cases) await expectCaught(from, forge, error, label);
  });

  it('a head file naming no checkpoint, for a chain that must have had one, or a chain of a writer that never was', async () => {
    const ghost = records(A).slice(0, 3);
    const noCheckpoint = expect.stringMatching(/^head file names no checkpoint/);
    const cases: Array<[string, (d: string) => Promise<unknown>, Record<string, unknown>]> = [
      [
        'genuine a, {null, null}',
        (d) => writeHead(d, 'a', null),
        { file: 'a.head.json', line: 1, reason: noCheckpoint },
      ],
      [
        'genuine a, {null, next: C27}',
        (d) => writeHead(d, 'a', null, cps(A).at(-1)!),
        { file: 'a.head.json', reason: noCheckpoint },
      ],
      ['genuine b, {null, null}', (d) => writeHead(d, 'b', null), { file: 'b.head.json', reason: noCheckpoint }],
      [
        'ghost writer, {null, null}',
        async (d) => {
          await writeChain(d, 'ghost', ghost);
          await writeHead(d, 'ghost', null);
        },
        { file: 'ghost.head.json', reason: noCheckpoint },
      ],
      [
        'ghost writer, no head file',
        (d) => writeChain(d, 'ghost', ghost),
        { file: 'ghost.head.json', reason: expect.stringMatching(/^head file missing/) },
      ],
      [
        "ghost writer, a's opening checkpoint",
        async (d) => {
          await writeChain(d, 'ghost', ghost);
          await writeHead(d, 'ghost', opening.a);
        },
        {
          file: 'ghost.head.json',
          reason: 'head file holds a checkpoint signed for writer a, not ghost: spliced from another chain',
        },
      ],
      [
        "ghost writer, a's opening checkpoint renamed",
        async (d) => {
          await writeChain(d, 'ghost', ghost);
          await writeHead(d, 'ghost', { ...opening.a, writer: 'ghost' });
        },
        { file: 'ghost.head.json', reason: 'head file checkpoint signature invalid' },
      ],
    ];
    for (const [label, forge, error] of cases) await expectCaught(base, forge, error, label);
    await expectCaught(
      snapA,
      (d) => writeHead(d, 'a', null),
      { file: 'a.head.json', reason: noCheckpoint },
      'crash state, {null, null}',
    );
  });

  it('an older, genuinely signed head file replayed onto a longer chain', async () => {
    const upTo = (rs: AuditRecord[], seq: number) => rs.filter((r) => r.seq <= seq);
    // snapA's head file {C5, C11}: the forger's chain runs on past seq 15 with no later checkpoint
    const cases: Array<[string, string, (d: string) => Promise<unknown>, Record<string, unknown>]> = [
      [
        'snapA + 6 forged records',
        snapA,
        (d) => writeChain(d, 'a', [...upTo(A, 15), ...forged(A[14]!, 6)]),
        { file: 'a.jsonl', line: 18, reason: runBreach(13, 18, 5) },
      ],
      [
        "a's genuine records, checkpoints after C11 stripped",
        snapA,
        (d) => writeChain(d, 'a', [...upTo(A, 12), ...records(A.filter((r) => r.seq > 12))]),
        { line: 18, reason: runBreach(13, 18, 5) },
      ],
      [
        "the genuine full chain under snapA's head file",
        base,
        (d) => snapshot(snapA, 'a', d).then(() => writeChain(d, 'a', A)),
        {
          file: 'a.jsonl',
          line: 28,
          id: 'a:28',
          reason: 'checkpoint rolled back: the head file names upToSeq 5, the chain holds upToSeq 27',
        },
      ],
      [
        'the genuine full chain under its opening head file',
        base,
        (d) => writeHead(d, 'a', opening.a),
        {
          line: 28,
          reason: 'checkpoint rolled back: the head file names only the opening checkpoint, the chain holds upToSeq 27',
        },
      ],
      [
        'b, its opening head file onto all of it, checkpoints stripped',
        base,
        async (d) => {
          await writeChain(d, 'b', records(B));
          await writeHead(d, 'b', opening.b);
        },
        { file: 'b.jsonl', line: 6, reason: runBreach(1, 6, 5) },
      ],
      [
        'snapT + records dated past the interval',
        snapT,
        async (d) => {
          const held = await readRecords(d, 't');
          const last = held.at(-1)!;
          const later = forged(last, 2).map((r, i) => ({
            ...r,
            time: new Date(Date.parse(last.time) + 150 * (i + 1)).toISOString(),
          }));
          await writeChain(d, 't', [...held, ...later]);
        },
        { file: 't.jsonl', reason: expect.stringMatching(timeBreach) },
      ],
    ];
    for (const [label, from, forge, error] of cases) await expectCaught(from, forge, error, label);
  });

  it('two writers spliced: prefixes, checkpoints, head files and whole files moved between them', async () => {
    const prefix = A.filter((r) => r.seq <= 12); // through C11
    const bFrom7 = B.filter((r) => r.seq >= 7);
    const signedForB = "checkpoint signed for writer b found in writer a's file: spliced from another chain";
    const cases: Array<[string, (d: string) => Promise<unknown>, Record<string, unknown>]> = [
      [
        "a's prefix + b's rest, re-linked as a",
        (d) => writeChain(d, 'a', [...prefix, ...bFrom7]),
        { file: 'a.jsonl', line: 18, reason: signedForB },
      ],
      [
        "a's prefix + b's records without its checkpoints",
        (d) => writeChain(d, 'a', [...prefix, ...records(B)]),
        { line: 18, reason: runBreach(13, 18, 5) },
      ],
      ['all of b re-linked as a', (d) => writeChain(d, 'a', B), { file: 'a.jsonl', line: 6, reason: signedForB }],
      [
        "b's first checkpoint in place of a's",
        (d) =>
          writeChain(
            d,
            'a',
            A.map((r) => (r.seq === 6 ? B[5]! : r)),
          ),
        { line: 6, reason: signedForB },
      ],
      [
        "b's closing checkpoint line copied verbatim into a's file",
        async (d) =>
          writeFile(join(d, 'a.jsonl'), `${await readFile(join(d, 'a.jsonl'), 'utf8')}${JSON.stringify(B.at(-1))}\n`),
        {
          file: 'a.jsonl',
          line: 29,
          reason: "record of writer b found in writer a's file: spliced from another chain or renamed",
        },
      ],
      [
        "b's files renamed over a's",
        async (d) => {
          await rename(join(d, 'b.jsonl'), join(d, 'a.jsonl'));
          await rename(join(d, 'b.head.json'), join(d, 'a.head.json'));
        },
        {
          file: 'a.jsonl',
          line: 1,
          reason: "record of writer b found in writer a's file: spliced from another chain or renamed",
        },
      ],
      [
        "a's files renamed to a writer that never was",
        async (d) => {
          await rename(join(d, 'a.jsonl'), join(d, 'z.jsonl'));
          await rename(join(d, 'a.head.json'), join(d, 'z.head.json'));
        },
        {
          file: 'z.jsonl',
          line: 1,
          reason: "record of writer a found in writer z's file: spliced from another chain or renamed",
        },
      ],
      [
        'head files swapped',
        async (d) => {
          await rename(join(d, 'a.head.json'), join(d, 'x'));
          await rename(join(d, 'b.head.json'), join(d, 'a.head.json'));
          await rename(join(d, 'x'), join(d, 'b.head.json'));
        },
        { file: 'a.head.json', line: 1, reason: "head file of writer b found as writer a's: renamed or swapped" },
      ],
      [
        "a's head file naming b's checkpoint",
        (d) => writeHead(d, 'a', cps(B).at(-1)!),
        {
          file: 'a.head.json',
          reason: 'head file holds a checkpoint signed for writer b, not a: spliced from another chain',
        },
      ],
      [
        "a's head file naming b's checkpoint relabelled as a's",
        (d) => writeHead(d, 'a', { ...cps(B).at(-1)!, writer: 'a' }),
        { file: 'a.head.json', reason: 'head file checkpoint signature invalid' },
      ],
    ];
    for (const [label, forge, error] of cases) await expectCaught(base, forge, error, label);
  });

  it('checkpoints moved, duplicated, reordered or altered, and records re-linked under them', async () => {
    const swap = (rs: AuditRecord[], i: number, j: number) =>
      rs.map((r, k) => (k === i ? rs[j]! : k === j ? rs[i]! : r));
    const alter = (patch: Partial<AuditCheckpoint>) =>
      A.map((r) => (r.seq === 6 ? { ...r, data: { ...r.data, ...patch } } : r));
    const sigInvalid =
      'checkpoint signature invalid: its writer, upToSeq, head, interval or closed flag was changed after signing, or another key made it';
    const cases: Array<[string, AuditRecord[], Record<string, unknown>]> = [
      [
        'C5 and C11 swapped',
        swap(A, 5, 11),
        {
          line: 6,
          reason:
            'checkpoint signed for upToSeq 11 found at seq 6: moved, duplicated or reordered (it belongs at seq 12)',
        },
      ],
      [
        'C5 duplicated',
        [...A.slice(0, 6), A[5]!, ...A.slice(6)],
        {
          line: 7,
          reason:
            'checkpoint signed for upToSeq 5 found at seq 7: moved, duplicated or reordered (it belongs at seq 6)',
        },
      ],
      [
        'C5 one record earlier',
        swap(A, 4, 5),
        {
          line: 5,
          reason:
            'checkpoint signed for upToSeq 5 found at seq 5: moved, duplicated or reordered (it belongs at seq 6)',
        },
      ],
      [
        'C17 two records later',
        [...A.slice(0, 17), A[18]!, A[19]!, A[17]!, ...A.slice(20)],
        { line: 18, reason: runBreach(13, 18, 5) },
      ],
      [
        'a record inserted before the closing checkpoint',
        [...A.slice(0, 27), ...forged(A[26]!, 1), A[27]!],
        { line: 29, reason: expect.stringMatching(/^checkpoint signed for upToSeq 27 found at seq 29/) },
      ],
      [
        'the closing checkpoint duplicated',
        [...A, A[27]!],
        { line: 29, reason: expect.stringMatching(/^record after the closing checkpoint \(line 28\)/) },
      ],
      ['covered count changed', alter({ upToSeq: 4 }), { line: 6, reason: sigInvalid }],
      ['chain hash changed', alter({ head: 'f'.repeat(64) }), { line: 6, reason: sigInvalid }],
      ['marked closed', alter({ closed: true }), { line: 6, reason: sigInvalid }],
      ['interval widened', alter({ everyRecords: 1_000_000, everyMs: 86_400_000 }), { line: 6, reason: sigInvalid }],
      ['writer renamed inside', alter({ writer: 'b' }), { line: 6, reason: sigInvalid }],
      [
        'record 3 edited, everything re-linked',
        A.map((r) => (r.seq === 3 ? { ...r, data: { i: 'nothing happened' } } : r)),
        {
          line: 6,
          reason: 'checkpoint signed over another chain hash: records 1..5 before it were rewritten and re-linked',
        },
      ],
      [
        'record 2 removed and a forged one added, same count',
        [...A.slice(0, 1), ...A.slice(2, 5), ...forged(A[4]!, 1), ...A.slice(5)],
        { line: 6, reason: expect.stringMatching(/^checkpoint signed over another chain hash/) },
      ],
    ];
    for (const [label, forgedRecords, error] of cases)
      await expectCaught(base, (d) => writeChain(d, 'a', forgedRecords), { file: 'a.jsonl', ...error }, label);
  });

  it('a chain truncated after a checkpoint and sealed as a clean close, or written on after its close', async () => {
    const upTo = (seq: number) => A.filter((r) => r.seq <= seq);
    const fake = (k: number) =>
      `fake clean close: the head file seals the chain at upToSeq ${k}, which is not the writer's signed closing checkpoint`;
    const cases: Array<[string, string, (d: string) => Promise<unknown>, Record<string, unknown>]> = [
      [
        'a cut after C17',
        base,
        (d) => writeChain(d, 'a', upTo(18)).then(() => writeHead(d, 'a', cps(A)[2]!)),
        { file: 'a.head.json', line: 1, reason: fake(17) },
      ],
      [
        'a cut after C5',
        base,
        (d) => writeChain(d, 'a', upTo(6)).then(() => writeHead(d, 'a', cps(A)[0]!)),
        { file: 'a.head.json', reason: fake(5) },
      ],
      [
        'crash state cut after C11',
        snapA,
        (d) => writeChain(d, 'a', upTo(12)).then(() => writeHead(d, 'a', cps(A)[1]!)),
        { file: 'a.head.json', reason: fake(11) },
      ],
      [
        'b without its closing checkpoint, genuine head',
        base,
        (d) => writeChain(d, 'b', B.slice(0, -1)),
        {
          file: 'b.jsonl',
          line: 15,
          reason: "tail truncated or chain rewritten: the head file's checkpoint (upToSeq 14) is not in the chain",
        },
      ],
      [
        'records after the close',
        base,
        (d) => writeChain(d, 'a', [...A, ...forged(A[26]!, 2)]),
        { file: 'a.jsonl', line: 29, reason: expect.stringMatching(/^record after the closing checkpoint/) },
      ],
      [
        'records after the close, head as if still running',
        base,
        (d) => writeChain(d, 'a', [...A, ...forged(A[26]!, 2)]).then(() => writeHead(d, 'a', cps(A)[3]!, cps(A)[4]!)),
        { line: 29, reason: expect.stringMatching(/^record after the closing checkpoint/) },
      ],
    ];
    for (const [label, from, forge, error] of cases) await expectCaught(from, forge, error, label);
    // a writer closed with no record signs a closing checkpoint over the empty chain: records slipped under it
    const empty = await dirs.make('audit-empty-');
    await (await createAuditWriter({ dir: empty, writerId: 'e', signer })).close();
    const [closeAt0] = await readRecords(empty, 'e');
    expect(checkpointOf(closeAt0!)).toMatchObject({ upToSeq: 0, closed: true });
    await expectCaught(
      empty,
      (d) =>
        writeChain(
          d,
          'e',
          records(A)
            .slice(0, 3)
            .map((r) => ({ ...r, writer: 'e' })),
        ),
      {
        file: 'e.jsonl',
        line: 1,
        reason: "tail truncated or chain rewritten: the head file's checkpoint (upToSeq 0) is not in the chain",
      },
      'records under an empty chain closed',
    );
  });

  it('what the files alone cannot show: the last run rewritten, the close dropped, a head composed to match; the witness can', async () => {
    const dir = await dirs.copyOf(base);
    await writeChain(dir, 'a', [...A.filter((r) => r.seq <= 24), ...forged(A[24]!, 3)]); // within one interval
    await writeHead(dir, 'a', cps(A)[2]!, cps(A)[3]!);
    const local = await verify(dir);
    expect(local).toMatchObject({ ok: true, head: { a: { seq: 27, closed: false } } }); // reads as a writer killed, not closed
    expect((await verify(dir, witnessA)).error).toMatchObject({
      file: 'a.jsonl',
      line: 28,
      reason: 'witness checkpoint not in chain (upToSeq 27): tail truncated',
    });
  });
});

describe('npm run audit -- verify on forged logs', () => {
  it('exits 1 naming file:line and the forgery', async () => {
    const keyFile = join(await dirs.make('audit-key-'), 'audit.pub');
    await writeFile(keyFile, signer.publicKeyPem);
    const run = (dir: string) =>
      spawnSync(process.execPath, ['bin/audit.ts', 'verify', '--dir', dir, '--public-key', keyFile], {
        encoding: 'utf8',
      });
    const cases: Array<[(d: string) => Promise<unknown>, string]> = [
      [
        (d) => writeChain(d, 'a', records(A)).then(() => writeHead(d, 'a', opening.a)),
        'audit FAILED at a.jsonl:6 (a:6): no signed checkpoint within records 1..6 (the writer checkpoints every 5 records)',
      ],
      [
        (d) => writeChain(d, 'a', [...A.filter((r) => r.seq <= 12), ...B.filter((r) => r.seq >= 7)]),
        "audit FAILED at a.jsonl:18 (a:18): checkpoint signed for writer b found in writer a's file",
      ],
      [
        (d) =>
          writeChain(
            d,
            'a',
            A.filter((r) => r.seq <= 18),
          ).then(() => writeHead(d, 'a', cps(A)[2]!)),
        'audit FAILED at a.head.json:1: fake clean close: the head file seals the chain at upToSeq 17',
      ],
    ];
    expect(run(base).status).toBe(0);
    for (const [forge, expected] of cases) {
      const dir = await dirs.copyOf(base);
      await forge(dir);
      const out = run(dir);
      expect(out.stdout).toContain(expected);
      expect(out.status).toBe(1);
    }
  });
});

describe('what a real writer leaves behind still verifies', () => {
  /**
   * Runs `script` on a real writer, noting after each durable batch how many lines are on disk and
   * what the head file says; then verifies every state a kill could leave: the chain cut at every
   * line (or torn inside one) under the head file of that moment, before or after step 1 of a
   * publication, and the closed chain.
   */
  async function everyCrashState(
    everyRecords: number,
    everyMs: number,
    script: (w: AuditWriter) => Promise<void>,
    sampled = false,
  ): Promise<number> {
    const dir = await dirs.make('audit-real-');
    const headPath = join(dir, 'w.head.json');
    const batches: Array<{ lines: number; head: string }> = [];
    let lines = 0;
    const onDurable = (rs: readonly AuditRecord[]) => {
      lines += rs.length;
      batches.push({ lines, head: readFileSync(headPath, 'utf8') });
    };
    const w = await createAuditWriter({
      dir,
      writerId: 'w',
      signer,
      checkpointEveryRecords: everyRecords,
      checkpointEveryMs: everyMs,
      onDurable,
    });
    const openingHead = readFileSync(headPath, 'utf8');
    await script(w);
    await w.close();
    const closedHead = readFileSync(headPath, 'utf8');
    const chain = readFileSync(join(dir, 'w.jsonl'), 'utf8').split('\n').filter(Boolean);
    expect(chain).toHaveLength(lines);

    const state = await dirs.make('audit-state-');
    let checked = 0;
    const check = async (n: number, head: string | null, label: string, torn = false) => {
      const tornLine = torn ? chain[n]!.slice(0, chain[n]!.length >> 1) : '';
      await writeFile(
        join(state, 'w.jsonl'),
        chain
          .slice(0, n)
          .map((l) => `${l}\n`)
          .join('') + tornLine,
      );
      if (head === null) await rm(join(state, 'w.head.json'), { force: true });
      else await writeFile(join(state, 'w.head.json'), head);
      const result = await verify(state);
      if (torn) expect(result.error?.reason, label).toMatch(/^truncated record/);
      else expect(result, `${label}: ${result.error?.reason}`).toMatchObject({ ok: true, records: n });
      checked++;
    };
    await check(0, null, 'claimed, killed before the head file');
    await check(0, openingHead, 'opened');
    let before = 0;
    for (const [i, b] of batches.entries()) {
      const cuts = sampled
        ? [...new Set([before, before + 1, (before + b.lines) >> 1, b.lines - 1, b.lines])]
        : Array.from({ length: b.lines - before + 1 }, (_, k) => before + k);
      for (const n of cuts) {
        await check(n, b.head, `batch ${i}, ${n} lines`);
        if (n < b.lines) await check(n, b.head, `batch ${i}, torn after ${n} lines`, true);
      }
      before = b.lines;
    }
    const result = await verify(dir);
    expect(result).toMatchObject({ ok: true, head: { w: { seq: lines, closed: true } } });
    expect(JSON.parse(closedHead)).toMatchObject({ checkpoint: { closed: true }, next: null });
    return checked;
  }

  it('by count: bursts that fill several checkpoints in one batch, killed at every line', async () => {
    const checked = await everyCrashState(4, 60_000, async (w) => {
      let i = 0;
      for (const burst of [1, 3, 7, 2, 9, 1, 5, 13])
        await Promise.all(Array.from({ length: burst }, () => append(w, i++)));
    });
    expect(checked).toBeGreaterThan(100);
  });

  it('by time: an idle writer, a stalled event loop, records that straddle the interval', async () => {
    await everyCrashState(1000, 40, async (w) => {
      await append(w, 0);
      await sleep(150); // idle: the timer signs the lone record, then nothing for a long while
      await append(w, 1);
      const stalled = [append(w, 2), append(w, 3)];
      const until = Date.now() + 60;
      let spins = 0;
      while (Date.now() < until) spins++; // the loop is blocked: no timer, no flush, appends keep their times
      stalled.push(append(w, 4), append(w, 5), append(w, 6));
      await Promise.all(stalled);
      expect(spins).toBeGreaterThan(0);
      for (let i = 0; i < 6; i++) {
        await append(w, 10 + i);
        await sleep(i * 12);
      }
    });
  });

  it('a writer opened and closed with no record, killed at every step', async () => {
    expect(await everyCrashState(5, 60_000, async () => {})).toBe(5); // claimed, opened, close batch at 0 lines / torn / 1 line
  });

  it('the default writer (1000 records / 1 s) under concurrent load, killed around every batch', async () => {
    let i = 0;
    const checked = await everyCrashState(
      1000,
      1000,
      async (w) => {
        await Promise.all(
          Array.from({ length: 64 }, async () => {
            while (i < 3000) await append(w, i++);
          }),
        );
      },
      true,
    );
    expect(checked).toBeGreaterThan(20);
  }, 90_000); // hundreds of crash states, each verified: slow on a shared 2-core machine
});
