// Declarations an operator writes as YAML (sandbox profiles, tools): every *.yaml in a folder,
// read once at start-up, each checked against its zod schema and named after its file. A bad
// file stops the start with a message naming the file and the field.
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';

export interface Declared<T> {
  path: string;
  value: T;
}

export async function readDeclarations<S extends z.ZodType<{ name: string }>>(
  dir: string,
  schema: S,
  fail: (message: string) => Error,
  /** What they are called, for the message when `required` and none is there ("profiles"). */
  opts: { required?: boolean; what?: string } = {},
): Promise<Array<Declared<z.infer<S>>>> {
  const listing = opts.required ? await readdir(dir) : await readdir(dir).catch(() => [] as string[]);
  const files = listing.filter((f) => /\.ya?ml$/.test(f)).sort();
  if (opts.required && files.length === 0) throw fail(`no ${opts.what ?? 'declarations'} (*.yaml) in ${dir}`);
  const out: Array<Declared<z.infer<S>>> = [];
  for (const file of files) {
    const path = join(dir, file);
    let raw: unknown;
    try {
      raw = parseYaml(await readFile(path, 'utf8'));
    } catch (e) {
      throw fail(`${path}: not valid YAML: ${(e as Error).message}`);
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw fail(`${path}: field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
    }
    const stem = basename(file).replace(/\.ya?ml$/, '');
    if (parsed.data.name !== stem)
      throw fail(`${path}: field "name": "${parsed.data.name}" must match the file name "${stem}"`);
    out.push({ path, value: parsed.data });
  }
  return out;
}
