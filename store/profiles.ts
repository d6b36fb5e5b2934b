// Sandbox profiles: read from YAML once at start-up and validated against the contract. A bad
// file stops the start with a message naming the file and the field.
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Profile } from '../contract/profile.ts';

export type ProfileSet = ReadonlyMap<string, Profile>;

export class ProfileError extends Error {
  override name = 'ProfileError';
}

export async function loadProfiles(dir: string): Promise<ProfileSet> {
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  if (files.length === 0) throw new ProfileError(`no profiles (*.yaml) in ${dir}`);
  const profiles = new Map<string, Profile>();
  for (const file of files) {
    const path = join(dir, file);
    let raw: unknown;
    try {
      raw = parseYaml(await readFile(path, 'utf8'));
    } catch (e) {
      throw new ProfileError(`${path}: not valid YAML: ${(e as Error).message}`);
    }
    const parsed = Profile.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.join('.') || '(root)';
      throw new ProfileError(`${path}: field "${field}": ${issue.message}`);
    }
    const profile = parsed.data;
    const stem = basename(file).replace(/\.ya?ml$/, '');
    if (profile.name !== stem) {
      throw new ProfileError(`${path}: field "name": "${profile.name}" must match the file name "${stem}"`);
    }
    profiles.set(profile.name, Object.freeze(profile));
  }
  return profiles;
}
