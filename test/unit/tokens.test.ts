import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { SandgateError } from '../../contract/errors.ts';
import { type KeyRing, loadKeyRing } from '../../guard/identity/signing-keys.ts';
import { createTokenService } from '../../guard/identity/tokens.ts';

let dir: string;
let keys: KeyRing;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keys-'));
  keys = await loadKeyRing(dir);
});

async function rejection(p: Promise<unknown>): Promise<SandgateError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SandgateError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

/** A token built by hand, as an attacker would: every claim Sandgate checks can be set. */
async function handMade(
  key: Parameters<SignJWT['sign']>[0],
  { alg = 'EdDSA', kid = keys.active.kid, aud = 'sandgate-api', iat = Math.floor(Date.now() / 1000), life = 300 } = {},
): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg, kid })
    .setIssuer('sandgate')
    .setAudience(aud)
    .setSubject('ag_1234567890')
    .setJti('tk_x')
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + life)
    .sign(key);
}

describe('signing keys', () => {
  it('are generated once, mode 0600, and reloaded unchanged', async () => {
    const st = await stat(join(dir, 'keys', 'signing.json'));
    expect(st.mode & 0o777).toBe(0o600);
    const again = await loadKeyRing(dir);
    expect(again.active.kid).toBe(keys.active.kid);
  });
});

describe('agent tokens', () => {
  it('round-trip agent, scopes and task', async () => {
    const svc = createTokenService(keys);
    const { token, expiresAt } = await svc.mint('ag_1234567890', {
      ttlSeconds: 60,
      scopes: { profiles: ['js'] },
      taskId: 't1',
    });
    const claims = await svc.verify(token);
    expect(claims).toMatchObject({ agentId: 'ag_1234567890', scopes: { profiles: ['js'] }, taskId: 't1' });
    expect(new Date(expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(60_000);
  });

  it('refuse an expired token with token_expired', async () => {
    let now = Date.now();
    const svc = createTokenService(keys, () => now);
    const { token } = await svc.mint('ag_1234567890', { ttlSeconds: 5 });
    now += 6_000;
    expect((await rejection(svc.verify(token))).code).toBe('token_expired');
  });

  it('refuse a token not yet valid', async () => {
    let now = Date.now() + 600_000;
    const svc = createTokenService(keys, () => now);
    const { token } = await svc.mint('ag_1234567890', { ttlSeconds: 60 });
    now = Date.now();
    expect((await rejection(svc.verify(token))).code).toBe('unauthorized');
  });

  it('refuse alg none', async () => {
    const svc = createTokenService(keys);
    const token = new UnsecuredJWT({ sub: 'ag_1234567890' })
      .setIssuer('sandgate')
      .setAudience('sandgate-api')
      .setExpirationTime('5m')
      .encode();
    expect((await rejection(svc.verify(token))).code).toBe('unauthorized');
  });

  it('refuse a token signed by another key with the same kid', async () => {
    const svc = createTokenService(keys);
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const token = await handMade(other.privateKey);
    expect((await rejection(svc.verify(token))).code).toBe('unauthorized');
  });

  it('refuse a token that lives longer than the maximum', async () => {
    const svc = createTokenService(keys);
    const token = await handMade(keys.active.privateKey, { life: 7200 });
    expect((await rejection(svc.verify(token))).code).toBe('unauthorized');
  });

  it('refuse a wrong audience and a tampered payload', async () => {
    const svc = createTokenService(keys);
    const wrongAud = await handMade(keys.active.privateKey, { aud: 'someone-else' });
    expect((await rejection(svc.verify(wrongAud))).code).toBe('unauthorized');

    const { token } = await svc.mint('ag_1234567890', { ttlSeconds: 60 });
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    payload.sub = 'ag_someoneelse00';
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    expect((await rejection(svc.verify(forged))).code).toBe('unauthorized');
  });

  it('a token is for one audience: the REST API by default, the MCP resource when minted for it', async () => {
    const svc = createTokenService(keys);
    const resource = 'http://127.0.0.1:8080/mcp';
    const mcp = await svc.mint('ag_1234567890', { ttlSeconds: 60, audience: resource });
    expect((await svc.verify(mcp.token, resource)).agentId).toBe('ag_1234567890');
    // Verified (and cached) for one audience, it is still refused for the other, both ways.
    expect((await rejection(svc.verify(mcp.token))).code).toBe('unauthorized');
    const rest = await svc.mint('ag_1234567890', { ttlSeconds: 60 });
    await svc.verify(rest.token);
    expect((await rejection(svc.verify(rest.token, resource))).code).toBe('unauthorized');
  });

  it('refuse a token without an expiry', async () => {
    const svc = createTokenService(keys);
    const iat = Math.floor(Date.now() / 1000);
    const noExp = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', kid: keys.active.kid })
      .setIssuer('sandgate')
      .setAudience('sandgate-api')
      .setSubject('ag_1234567890')
      .setJti('tk_x')
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .sign(keys.active.privateKey);
    expect((await rejection(svc.verify(noExp))).code).toBe('unauthorized');
  });

  it('refuse to mint past the maximum lifetime', async () => {
    const svc = createTokenService(keys);
    expect((await rejection(svc.mint('ag_1234567890', { ttlSeconds: 3601 }))).code).toBe('validation_failed');
  });
});

describe('the verified-token cache', () => {
  it('still refuses a cached token once it expires', async () => {
    let now = Date.now();
    const svc = createTokenService(keys, () => now);
    const { token } = await svc.mint('ag_1234567890', { ttlSeconds: 5 });
    expect((await svc.verify(token)).agentId).toBe('ag_1234567890');
    now += 6_000;
    expect((await rejection(svc.verify(token))).code).toBe('token_expired');
  });
});

describe('key rotation', () => {
  it('signs with the new key while tokens of the old one verify until they expire', async () => {
    const { rotateSigningKey } = await import('../../guard/identity/signing-keys.ts');
    const oldSvc = createTokenService(keys);
    const { token: oldToken } = await oldSvc.mint('ag_1234567890', { ttlSeconds: 60 });
    const kid = await rotateSigningKey(dir);
    const ring = await loadKeyRing(dir);
    expect(ring.active.kid).toBe(kid);
    expect(ring.active.kid).not.toBe(keys.active.kid);
    const svc = createTokenService(ring);
    expect((await svc.verify(oldToken)).agentId).toBe('ag_1234567890');
    const { token } = await svc.mint('ag_1234567890', { ttlSeconds: 60 });
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid).toBe(kid);
    // A process that only knows the old ring cannot verify tokens of the new key: fail closed.
    expect((await rejection(oldSvc.verify(token))).code).toBe('unauthorized');
  });
});

describe('algorithm confusion', () => {
  it('refuses an HS256 token keyed with the public key', async () => {
    const { exportJWK } = await import('jose');
    const svc = createTokenService(keys);
    const publicJwk = await exportJWK(keys.active.publicKey);
    const secret = new TextEncoder().encode(JSON.stringify(publicJwk));
    const token = await handMade(secret, { alg: 'HS256' });
    expect((await rejection(svc.verify(token))).code).toBe('unauthorized');
  });
});
