// Secrets that live in the data directory: created once, atomically, readable only by the owner.
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Returns the file's content, creating it with `make()` when absent. The content is written whole
 * to a temporary file first and then linked into place: link() fails with EEXIST when another
 * process won, and a file that exists under `path` is always complete (a `wx` open made the name
 * visible before its bytes, and a process starting beside it read an empty secret).
 */
export async function readOrCreateSecret(path: string, make: () => Promise<string> | string): Promise<string> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const content = await make();
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { flag: 'wx', mode: 0o600 });
  try {
    await link(tmp, path);
    return content;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return readFile(path, 'utf8');
    throw e;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}
