// The admin credential: SANDGATE_ADMIN_TOKEN, or a random one generated at first start.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { readOrCreateSecret } from './secret-files.ts';

export interface AdminTokenCheck {
  matches(candidate: string): boolean;
}

export async function loadAdminToken(dataDir: string, fromEnv: string | undefined): Promise<string> {
  if (fromEnv) return fromEnv;
  const token = await readOrCreateSecret(
    join(dataDir, 'admin-token'),
    () => `sga_${randomBytes(32).toString('base64url')}`,
  );
  return token.trim();
}

/**
 * Constant-time comparison: both sides are hashed so lengths never leak. Every request's token is
 * checked here first, so the one-shot hash (no Hash object per call).
 */
export function adminTokenCheck(token: string): AdminTokenCheck {
  const want = hash('sha256', token, 'buffer');
  return {
    matches: (candidate) => timingSafeEqual(want, hash('sha256', candidate, 'buffer')),
  };
}
