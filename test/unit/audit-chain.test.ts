import { createHash, verify } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import canonicalizeModule from 'canonicalize';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_GENESIS,
  AuditInput,
  type AuditInput as AuditInputType,
  AuditRecord,
  CheckpointData,
} from '../../contract/audit.ts';
import {
  auditKeyId,
  checkpointSignatureProblem,
  generateAuditSigner,
  loadAuditSigner,
  pinKeys,
} from '../../guard/audit/audit-signer.ts';
import {
  appendRecord,
  CHECKPOINT_SIGNED,
  checkpointPayload,
  makeCheckpoint,
  startChain,
} from '../../guard/audit/chain.ts';
import { REDACTED, redact } from '../../guard/audit/redact.ts';

// The reference implementation, called directly: the chain must agree with it byte for byte.
const canonicalize = canonicalizeModule as unknown as (v: unknown) => string;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const terms = { closed: false, everyRecords: 1000, everyMs: 1000 };

describe('audit chain', () => {
  it('hashes the RFC 8785 form of the record without its hash, and writes the canonical line', () => {
    const { record, line } = appendRecord(startChain('w1'), {
      kind: 'execution.requested',
      agentId: 'ag_1',
      taskId: 't1',
      subject: 'ex_1',
      data: { z: 1, a: { y: 'é', b: [3, 1.5e21, 'x'] } },
    });
    const { hash, ...rest } = record;
    expect(hash).toBe(sha256(canonicalize(rest)));
    expect(line).toBe(canonicalize(record));
    expect(JSON.parse(line)).toEqual(record);
    expect(AuditRecord.parse(record)).toEqual(record);
    expect(record).toMatchObject({ v: 1, id: 'w1:1', writer: 'w1', seq: 1, prev: AUDIT_GENESIS });
    expect(record.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('links each record to the previous one, and nested "id"/"hash" keys do not confuse the line', () => {
    let head = startChain('w1');
    const records = [];
    for (let i = 0; i < 3; i++) {
      const sealed = appendRecord(head, { kind: 'x.y', data: { id: `"id":"${i}`, nested: { hash: 'h', id: 'i' } } });
      expect(sealed.line).toBe(canonicalize(sealed.record));
      records.push(sealed.record);
      head = sealed.head;
    }
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(records[1]!.prev).toBe(records[0]!.hash);
    expect(records[2]!.prev).toBe(records[1]!.hash);
    expect(head).toEqual({ writer: 'w1', seq: 3, hash: records[2]!.hash });
  });

  it('refuses input that does not fit the contract', () => {
    const head = startChain('w1');
    expect(() => appendRecord(head, { kind: 'Not A Kind', data: {} })).toThrow();
    expect(() => appendRecord(head, { kind: 'x.y', data: [] as unknown as Record<string, unknown> })).toThrow();
    expect(() => appendRecord(head, { kind: 'x.y', data: { n: 1n } })).toThrow(); // BigInt has no JSON form
  });

  it('checkpoints sign {writer, upToSeq, head, closed, interval} under a domain tag and sit right after the record they cover', () => {
    const signer = generateAuditSigner();
    const first = appendRecord(startChain('w1'), { kind: 'x.y', data: {} });
    const { checkpoint, input } = makeCheckpoint(first.head, signer, terms);
    expect(checkpoint).toMatchObject({
      writer: 'w1',
      upToSeq: 1,
      head: first.record.hash,
      closed: false,
      everyRecords: 1000,
      everyMs: 1000,
      keyId: signer.keyId,
    });
    const payload = canonicalize({
      signed: CHECKPOINT_SIGNED,
      writer: 'w1',
      upToSeq: 1,
      head: first.record.hash,
      closed: false,
      everyRecords: 1000,
      everyMs: 1000,
    });
    expect(checkpointPayload(checkpoint)).toBe(payload);
    expect(verify(null, Buffer.from(payload), signer.publicKey, Buffer.from(checkpoint.signature, 'base64'))).toBe(
      true,
    );
    const cp = appendRecord(first.head, input);
    expect(cp.record.kind).toBe('audit.checkpoint');
    expect(CheckpointData.parse(cp.record.data).upToSeq).toBe(cp.record.seq - 1);
    expect(cp.record.prev).toBe(checkpoint.head);
    expect(cp.record.data).toEqual(checkpoint); // the record holds the whole checkpoint, writer included
    // the opening checkpoint covers the empty chain
    expect(makeCheckpoint(startChain('w1'), signer, terms).checkpoint).toMatchObject({
      upToSeq: 0,
      head: AUDIT_GENESIS,
    });
  });

  it('checkpoint signatures verify only with the pinned key and only for the signed values', () => {
    const signer = generateAuditSigner();
    const { checkpoint } = makeCheckpoint({ writer: 'w1', seq: 5, hash: 'a'.repeat(64) }, signer, terms);
    expect(checkpointSignatureProblem(checkpoint, pinKeys([signer.publicKeyPem]))).toBeNull();
    expect(checkpointSignatureProblem({ ...checkpoint, upToSeq: 4 }, pinKeys([signer.publicKey]))).toBe(
      'checkpoint signature invalid',
    );
    expect(checkpointSignatureProblem({ ...checkpoint, writer: 'w2' }, pinKeys([signer.publicKey]))).toBe(
      'checkpoint signature invalid',
    );
    expect(checkpointSignatureProblem({ ...checkpoint, head: 'b'.repeat(64) }, pinKeys([signer.publicKey]))).toBe(
      'checkpoint signature invalid',
    );
    expect(checkpointSignatureProblem({ ...checkpoint, closed: true }, pinKeys([signer.publicKey]))).toBe(
      'checkpoint signature invalid',
    );
    expect(checkpointSignatureProblem({ ...checkpoint, everyRecords: 10 ** 9 }, pinKeys([signer.publicKey]))).toBe(
      'checkpoint signature invalid',
    );
    expect(checkpointSignatureProblem({ ...checkpoint, everyMs: 10 ** 9 }, pinKeys([signer.publicKey]))).toBe(
      'checkpoint signature invalid',
    );
    const other = generateAuditSigner();
    expect(checkpointSignatureProblem(checkpoint, pinKeys([other.publicKey]))).toMatch(
      /^checkpoint signature invalid: key ak_\w+ is not pinned$/,
    );
    // an attacker claiming the pinned key id still fails on the signature
    const forged = makeCheckpoint(
      { writer: 'w1', seq: 5, hash: 'a'.repeat(64) },
      { keyId: signer.keyId, sign: other.sign },
      terms,
    );
    expect(checkpointSignatureProblem(forged.checkpoint, pinKeys([signer.publicKey]))).toBe(
      'checkpoint signature invalid',
    );
  });
});

describe('audit redaction', () => {
  it('replaces values under secret-looking keys, at any depth, before hashing', () => {
    const data = {
      Authorization: 'Bearer abc',
      headers: [{ 'x-api-key': 'k1', API_KEY: 'k2', apikey: 'k3', accept: 'json' }],
      nested: { db: { password: 'p', credentials: { user: 'u', pass: 'p' } }, clientSecret: 's' },
      accessToken: 'tok',
      tokens: 1200,
      maxTokens: 5000,
      safe: 'kept',
    };
    const out = redact(data);
    expect(out).toEqual({
      Authorization: REDACTED,
      headers: [{ 'x-api-key': REDACTED, API_KEY: REDACTED, apikey: REDACTED, accept: 'json' }],
      nested: { db: { password: REDACTED, credentials: REDACTED }, clientSecret: REDACTED },
      accessToken: REDACTED,
      tokens: 1200, // counts stay: a number is not a credential
      maxTokens: 5000,
      safe: 'kept',
    });
    expect(data.accessToken).toBe('tok'); // the caller's object is untouched
    const { record, line } = appendRecord(startChain('w1'), { kind: 'x.y', data });
    expect(record.data).toEqual(out);
    expect(line).not.toMatch(/Bearer abc|tok"|k1|"p"/);
  });

  it('finds a secret-looking key that only a toJSON makes, and keeps a secret-looking word that is only a value', () => {
    const data = { x: { toJSON: () => ({ password: 'p', n: 1 }) }, note: 'rotate the token weekly', tokenCount: 3 };
    expect(redact(data)).toEqual({ x: { password: REDACTED, n: 1 }, note: 'rotate the token weekly', tokenCount: 3 });
    const plain = { code: 'const password = input; fetch(apiKey)', list: [{ ok: true }] };
    expect(redact(plain)).toEqual(plain);
    expect(() => redact({ toJSON: () => undefined })).toThrow(TypeError);
  });

  it.each([
    ['a plain input', { kind: 'x.y', agentId: 'ag_1', subject: 'ex_1', data: { a: 1 } }],
    ['explicit undefined refs', { kind: 'x.y', agentId: undefined, taskId: undefined, data: {} }],
    ['a kind of 64 characters', { kind: 'k'.repeat(64), data: {} }],
    ['a kind of 65 characters', { kind: 'k'.repeat(65), data: {} }],
    ['an upper-case kind', { kind: 'X.y', data: {} }],
    ['a kind with an empty word', { kind: 'x..y', data: {} }],
    ['an empty agentId', { kind: 'x.y', agentId: '', data: {} }],
    ['a 200-character subject', { kind: 'x.y', subject: 's'.repeat(200), data: {} }],
    ['a 201-character subject', { kind: 'x.y', subject: 's'.repeat(201), data: {} }],
    ['a number as taskId', { kind: 'x.y', taskId: 7, data: {} }],
    ['a key the schema does not know', { kind: 'x.y', data: {}, extra: 1 }],
    ['data as an array', { kind: 'x.y', data: [] }],
    ['data null', { kind: 'x.y', data: null }],
    ['no data', { kind: 'x.y' }],
    ['data with no prototype', { kind: 'x.y', data: Object.assign(Object.create(null), { a: 1 }) }],
    ['data as a Map', { kind: 'x.y', data: new Map([['a', 1]]) }],
    [
      'data a class instance',
      {
        kind: 'x.y',
        data: new (class Box {
          a = 1;
        })(),
      },
    ],
    ['an input that is a string', 'x.y'],
  ])('accepts exactly what AuditInput accepts: %s', (_, input) => {
    const schema = AuditInput.safeParse(input);
    let sealed: ReturnType<typeof appendRecord> | undefined;
    try {
      sealed = appendRecord(startChain('w1'), input as AuditInputType);
    } catch {
      sealed = undefined;
    }
    expect(sealed !== undefined).toBe(schema.success);
    if (sealed && schema.success) expect(sealed.record.kind).toBe(schema.data.kind);
  });

  it('normalizes to JSON like JSON.stringify', () => {
    expect(redact({ d: new Date(0), u: undefined, f: () => 1, n: Number.NaN, a: [undefined] })).toEqual({
      d: '1970-01-01T00:00:00.000Z',
      n: null,
      a: [null],
    });
  });
});

describe('audit signing key', () => {
  it('is created once, mode 0600, with its public key beside it, and reloads unchanged', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'audit-key-'));
    const signer = await loadAuditSigner({ dataDir });
    const keyFile = join(dataDir, 'keys', 'audit-signing.json');
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const pem = await readFile(join(dataDir, 'keys', 'audit-signing.pub'), 'utf8');
    expect(pem).toBe(signer.publicKeyPem);
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(signer.keyId).toBe(auditKeyId(signer.publicKey));
    expect(signer.keyId).toMatch(/^ak_[0-9a-f]{16}$/);
    const again = await loadAuditSigner({ dataDir });
    expect(again.keyId).toBe(signer.keyId);
    const elsewhere = await loadAuditSigner({ keyFile: join(dataDir, 'other', 'k.json') });
    expect(elsewhere.keyId).not.toBe(signer.keyId);
    expect(await readFile(join(dataDir, 'other', 'k.pub'), 'utf8')).toBe(elsewhere.publicKeyPem);
    await rm(dataDir, { recursive: true, force: true });
  });
});
