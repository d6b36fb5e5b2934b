// The Ed25519 key ring that signs agent tokens. Generated once into the data dir (mode 0600).
// A ring, not a key: the newest key signs, every key verifies, so a key can be added (rotation)
// while tokens signed by the previous one stay valid until they expire.

import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { readOrCreateSecret } from './secret-files.ts';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

export interface KeyRing {
  readonly active: SigningKey;
  byKid(kid: string): SigningKey | undefined;
}

interface StoredKey {
  kid: string;
  createdAt: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

async function newStoredKey(): Promise<StoredKey> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  return {
    kid: `k_${randomBytes(8).toString('base64url')}`,
    createdAt: new Date().toISOString(),
    privateJwk: await exportJWK(privateKey),
    publicJwk: await exportJWK(publicKey),
  };
}

export async function loadKeyRing(dataDir: string): Promise<KeyRing> {
  const raw = await readOrCreateSecret(join(dataDir, 'keys', 'signing.json'), async () =>
    JSON.stringify({ keys: [await newStoredKey()] }, null, 2),
  );
  const stored = (JSON.parse(raw) as { keys: StoredKey[] }).keys;
  if (!Array.isArray(stored) || stored.length === 0) throw new Error('keys/signing.json holds no key');
  const keys = await Promise.all(
    stored.map(async (k) => ({
      kid: k.kid,
      privateKey: (await importJWK(k.privateJwk, 'EdDSA')) as CryptoKey,
      publicKey: (await importJWK(k.publicJwk, 'EdDSA')) as CryptoKey,
    })),
  );
  const byKid = new Map(keys.map((k) => [k.kid, k]));
  return { active: keys[keys.length - 1]!, byKid: (kid) => byKid.get(kid) };
}

/**
 * Adds a new signing key to the ring: it signs from the next start of each API process on, and
 * tokens signed by the older keys keep verifying until they expire (at most an hour).
 * Keys older than `keep` rotations are dropped. Returns the new key id.
 */
export async function rotateSigningKey(dataDir: string, keep = 3): Promise<string> {
  await loadKeyRing(dataDir); // creates the file when there is none yet
  const path = join(dataDir, 'keys', 'signing.json');
  const stored = (JSON.parse(await readFile(path, 'utf8')) as { keys: StoredKey[] }).keys;
  const fresh = await newStoredKey();
  const keys = [...stored, fresh].slice(-keep);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify({ keys }, null, 2), { mode: 0o600 });
  await rename(tmp, path); // atomic: a starting process reads the old ring or the new one
  return fresh.kid;
}
