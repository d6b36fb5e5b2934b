// Sandbox profiles: read from YAML once at start-up and validated against the contract. A bad
// file stops the start with a message naming the file and the field.
import { deepFreeze } from '../contract/deep-freeze.ts';
import { Profile } from '../contract/profile.ts';
import { readDeclarations } from './declaration-files.ts';

export type ProfileSet = ReadonlyMap<string, Profile>;

export class ProfileError extends Error {
  override name = 'ProfileError';
}

export async function loadProfiles(dir: string): Promise<ProfileSet> {
  const profiles = new Map<string, Profile>();
  for (const { value } of await readDeclarations(dir, Profile, (m) => new ProfileError(m), {
    required: true,
    what: 'profiles',
  })) {
    profiles.set(value.name, deepFreeze(value));
  }
  return profiles;
}
