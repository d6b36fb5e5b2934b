// The Ed25519 key that signs audit checkpoints. It lives apart from the log (keys/, not audit/)
// so that whoever can rewrite the log files cannot also re-sign them, as long as the key file is
// kept out of their reach: give an explicit path on another mount where that matters, and pin
// the public key (`audit-signing.pub`) wherever the log is verified.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { AuditCheckpoint } from '../../contract/audit.ts';
import { readOrCreateSecret } from '../identity/secret-files.ts';
import { type CheckpointSigner, checkpointPayload } from './chain.ts';

export interface AuditSigner extends CheckpointSigner {
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;
}

interface StoredAuditKey {
  keyId: string;
  createdAt: string;
  privateKeyPem: string;
}

/** Short fingerprint of the public key: checkpoints name the key that signed them. */
export function auditKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return `ak_${createHash('sha256').update(der).digest('hex').slice(0, 16)}`;
}

export function createAuditSigner(privateKey: KeyObject): AuditSigner {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('the audit signing key must be Ed25519');
  const publicKey = createPublicKey(privateKey);
  return {
    keyId: auditKeyId(publicKey),
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    sign: (payload) => sign(null, Buffer.from(payload), privateKey).toString('base64'),
  };
}

/** An in-memory key: tests and benchmarks. */
export const generateAuditSigner = (): AuditSigner => createAuditSigner(generateKeyPairSync('ed25519').privateKey);

/**
 * Loads the checkpoint key, creating it (mode 0600) on first use: `$dataDir/keys/audit-signing.json`
 * unless `keyFile` names another place. The public key is (re)written next to it as `.pub` PEM.
 */
export async function loadAuditSigner(opts: { dataDir: string } | { keyFile: string }): Promise<AuditSigner> {
  const keyFile = 'keyFile' in opts ? opts.keyFile : join(opts.dataDir, 'keys', 'audit-signing.json');
  const raw = await readOrCreateSecret(keyFile, () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const stored: StoredAuditKey = {
      keyId: auditKeyId(createPublicKey(privateKey)),
      createdAt: new Date().toISOString(),
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
    return JSON.stringify(stored, null, 2);
  });
  const stored = JSON.parse(raw) as StoredAuditKey;
  const signer = createAuditSigner(createPrivateKey(stored.privateKeyPem));
  if (stored.keyId !== signer.keyId) throw new Error(`${keyFile}: keyId does not match the key`);
  await writePublicKey(join(dirname(keyFile), `${basename(keyFile, '.json')}.pub`), signer.publicKeyPem);
  return signer;
}

async function writePublicKey(path: string, pem: string): Promise<void> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === pem) return;
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, pem, { mode: 0o644 });
  await rename(tmp, path); // atomic: a verifier never reads half a key
}

/** Pinned keys by key id; accepts KeyObjects or PEM text (several PEMs may share one string). */
export function pinKeys(keys: ReadonlyArray<KeyObject | string>): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>();
  for (const k of keys) {
    const objs =
      typeof k === 'string'
        ? (k.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [k]).map((p) => createPublicKey(p))
        : [k];
    for (const o of objs) {
      const pub = o.type === 'private' ? createPublicKey(o) : o;
      if (pub.asymmetricKeyType !== 'ed25519') throw new Error('audit public keys must be Ed25519');
      out.set(auditKeyId(pub), pub);
    }
  }
  return out;
}

/** Null when the checkpoint's signature verifies with a pinned key, else why not. */
export function checkpointSignatureProblem(cp: AuditCheckpoint, pinned: Map<string, KeyObject>): string | null {
  const key = pinned.get(cp.keyId);
  if (!key) return `checkpoint signature invalid: key ${cp.keyId} is not pinned`;
  const ok = verify(null, Buffer.from(checkpointPayload(cp)), key, Buffer.from(cp.signature, 'base64'));
  return ok ? null : 'checkpoint signature invalid';
}
