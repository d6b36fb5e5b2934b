// Agent tokens: EdDSA JWTs, short-lived, bound to one agent and optionally narrowed by scopes
// and a task. Verification pins the algorithm, issuer, audience and maximum lifetime. A token is
// for one audience: the REST API (`sandgate-api`) or, minted with a resource indicator (RFC 8707),
// the MCP endpoint's resource URL; neither is accepted by the other.

import { randomBytes } from 'node:crypto';
import { errors, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { MAX_TOKEN_TTL_S, Scopes } from '../../contract/agent.ts';
import { deepFreeze } from '../../contract/deep-freeze.ts';
import { SandgateError } from '../../contract/errors.ts';
import type { KeyRing } from './signing-keys.ts';

const ISSUER = 'sandgate';
/** The REST API's audience; the MCP endpoint's is its resource URL. */
export const API_AUDIENCE = 'sandgate-api';

export interface TokenClaims {
  agentId: string;
  tokenId: string;
  scopes: Scopes | undefined;
  taskId: string | undefined;
  generation: number;
  expiresAt: Date;
}

export interface MintOptions {
  ttlSeconds: number;
  scopes?: Scopes | undefined;
  taskId?: string | undefined;
  /** The agent's token generation (see Agent.tokenGeneration). */
  generation?: number;
  /** Who the token is for (default: the REST API). */
  audience?: string | undefined;
}

export interface TokenService {
  mint(agentId: string, opts: MintOptions): Promise<{ token: string; expiresAt: string; tokenId: string }>;
  /** Verifies a token minted for `audience` (default: the REST API). */
  verify(token: string, audience?: string): Promise<TokenClaims>;
}

/** Verified signatures are remembered (bounded), so each token pays for EdDSA once. */
const VERIFIED_CACHE_SIZE = 10_000;

export function createTokenService(keys: KeyRing, now: () => number = Date.now): TokenService {
  const verified = new Map<string, TokenClaims>();
  const remember = (token: string, claims: TokenClaims) => {
    if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
    verified.set(token, claims);
  };
  return {
    async mint(agentId, { ttlSeconds, scopes, taskId, generation = 0, audience = API_AUDIENCE }) {
      if (ttlSeconds > MAX_TOKEN_TTL_S)
        throw new SandgateError('validation_failed', `ttlSeconds is at most ${MAX_TOKEN_TTL_S}`);
      const iat = Math.floor(now() / 1000);
      const exp = iat + ttlSeconds;
      const tokenId = `tk_${randomBytes(12).toString('base64url')}`;
      const claims: JWTPayload = {};
      if (scopes) claims.scp = scopes;
      if (taskId) claims.task = taskId;
      if (generation) claims.gen = generation;
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA', kid: keys.active.kid, typ: 'JWT' })
        .setIssuer(ISSUER)
        .setAudience(audience)
        .setSubject(agentId)
        .setJti(tokenId)
        .setIssuedAt(iat)
        .setNotBefore(iat)
        .setExpirationTime(exp)
        .sign(keys.active.privateKey);
      return { token, expiresAt: new Date(exp * 1000).toISOString(), tokenId };
    },

    async verify(token, audience = API_AUDIENCE) {
      // Keyed by audience too: a token checked for one audience is not thereby good for another.
      const cacheKey = `${audience}\u0000${token}`;
      const known = verified.get(cacheKey);
      if (known) {
        // The signature was checked; time is not a property of the token, so check it again.
        if (known.expiresAt.getTime() <= now()) {
          verified.delete(cacheKey);
          throw new SandgateError('token_expired', 'the token has expired: mint a new one');
        }
        return known;
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(
          token,
          (header) => {
            const key = header.kid ? keys.byKid(header.kid) : undefined;
            if (!key) throw new errors.JWKSNoMatchingKey();
            return key.publicKey;
          },
          {
            algorithms: ['EdDSA'],
            issuer: ISSUER,
            audience,
            maxTokenAge: MAX_TOKEN_TTL_S,
            requiredClaims: ['exp', 'iat', 'nbf', 'sub', 'jti'],
            currentDate: new Date(now()),
          },
        ));
      } catch (e) {
        if (e instanceof errors.JWTExpired)
          throw new SandgateError('token_expired', 'the token has expired: mint a new one');
        throw new SandgateError('unauthorized', 'the bearer token is not valid');
      }
      // A token whose own lifetime exceeds the maximum was not minted here.
      if ((payload.exp as number) - (payload.iat as number) > MAX_TOKEN_TTL_S) {
        throw new SandgateError('unauthorized', 'the bearer token is not valid');
      }
      const scopes = payload.scp === undefined ? undefined : Scopes.safeParse(payload.scp);
      if (scopes && !scopes.success) throw new SandgateError('unauthorized', 'the bearer token is not valid');
      if (payload.task !== undefined && typeof payload.task !== 'string') {
        throw new SandgateError('unauthorized', 'the bearer token is not valid');
      }
      const claims: TokenClaims = {
        agentId: payload.sub as string,
        tokenId: payload.jti as string,
        scopes: scopes?.data && deepFreeze(scopes.data), // shared by the cached claims; Cedar's agent entity is kept per scopes object
        taskId: payload.task as string | undefined,
        generation: typeof payload.gen === 'number' ? payload.gen : 0,
        expiresAt: new Date((payload.exp as number) * 1000),
      };
      remember(cacheKey, claims);
      return claims;
    },
  };
}
