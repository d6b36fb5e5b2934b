// Reading audit records from chain files (guard/audit/trace-files.ts): every segment of a chain
// (`w.jsonl`, `w~000002.jsonl`) in every directory given, each record once even when a segment is
// in two directories, in time-then-id order, checkpoints left out, and a torn or stray line named
// rather than silently dropped.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainFiles, taskStoryFromFiles } from '../../guard/audit/trace-files.ts';

let root: string;
const rec = (writer: string, seq: number, time: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    v: 1,
    id: `${writer}:${seq}`,
    writer,
    seq,
    time,
    kind: 'task.created',
    taskId: 't1',
    data: { goal: `g${seq}`, budget: {} },
    prev: '0'.repeat(64),
    hash: '1'.repeat(64),
    ...extra,
  });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sandgate-trace-files-'));
  await mkdir(join(root, 'live'));
  await mkdir(join(root, 'archive'));
  const seg1 = [
    rec('w1', 1, '2026-01-01T00:00:02.000Z'),
    rec('w1', 2, '2026-01-01T00:00:04.000Z', { kind: 'audit.checkpoint' }),
  ];
  const seg2 = [rec('w1', 3, '2026-01-01T00:00:05.000Z'), '{"torn":'];
  await writeFile(join(root, 'archive', 'w1.jsonl'), `${seg1.join('\n')}\n`);
  await writeFile(join(root, 'live', 'w1.jsonl'), `${seg1.join('\n')}\n`); // mid-move: in both
  await writeFile(join(root, 'live', 'w1~000002.jsonl'), `${seg2.join('\n')}\n`);
  await writeFile(
    join(root, 'live', 'w2.jsonl'),
    `${rec('w2', 1, '2026-01-01T00:00:02.000Z')}\n${rec('w2', 2, '2026-01-01T00:00:03.000Z', { taskId: 'other' })}\n`,
  );
  await writeFile(join(root, 'live', 'w2.head.json'), '{}');
  await writeFile(join(root, 'live', 'notes.txt'), 'not a chain');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('reading chain files', () => {
  it('finds every segment of every chain, and only chains', async () => {
    const files = await chainFiles([join(root, 'live'), join(root, 'archive'), join(root, 'missing')]);
    expect(files.map((f) => f.slice(root.length))).toEqual([
      '/live/w1.jsonl',
      '/live/w1~000002.jsonl',
      '/live/w2.jsonl',
      '/archive/w1.jsonl',
    ]);
    expect((await chainFiles([join(root, 'live')], new Set(['w2']))).map((f) => f.slice(root.length))).toEqual([
      '/live/w2.jsonl',
    ]);
  });

  it("gives a task's records once each, in order, without checkpoints, naming the torn line", async () => {
    const read = await taskStoryFromFiles([join(root, 'live'), join(root, 'archive')], 't1');
    expect(read.records.map((r) => r.id)).toEqual(['w1:1', 'w2:1', 'w1:3']);
    expect(read.story[0]).toBe('2026-01-01T00:00:02.000Z task created: "g1"');
    expect(read.files).toBe(4);
    expect(read.unreadable).toEqual([{ file: join(root, 'live', 'w1~000002.jsonl'), line: 2 }]);
  });
});
