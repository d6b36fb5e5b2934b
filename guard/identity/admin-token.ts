// The admin credential: SANDGATE_ADMIN_TOKEN, or a random one generated at first start.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
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

/** Constant-time comparison: both sides are hashed so lengths never leak. */
export function adminTokenCheck(token: string): AdminTokenCheck {
  const want = createHash('sha256').update(token).digest();
  return {
    matches: (candidate) => timingSafeEqual(want, createHash('sha256').update(candidate).digest()),
  };
}
