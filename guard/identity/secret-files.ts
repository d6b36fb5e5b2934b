// Secrets that live in the data directory: created once, atomically, readable only by the owner.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Returns the file's content, creating it with `make()` when absent. `wx` makes creation atomic,
 * so two processes starting together agree on one secret.
 */
export async function readOrCreateSecret(path: string, make: () => Promise<string> | string): Promise<string> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const content = await make();
  try {
    await writeFile(path, content, { flag: 'wx', mode: 0o600 });
    await chmod(path, 0o600); // umask may have widened the mode
    return content;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return readFile(path, 'utf8');
    throw e;
  }
}
