import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProfiles } from '../../guard/profiles.ts';

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'profiles-'));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

const good = `name: js
engine: isolate
language: javascript
limits: { timeoutMs: 1000, memoryMb: 32, outputBytes: 4096, codeBytes: 1000 }
`;

describe('loadProfiles', () => {
  it('loads the profiles that ship, with js on the isolate engine', async () => {
    const profiles = await loadProfiles('sandbox-profiles');
    const js = profiles.get('js');
    expect(js).toMatchObject({ engine: 'isolate', language: 'javascript' });
    expect(js!.limits.timeoutMs).toBeGreaterThan(0);
  });

  it('stops on a bad field, naming the file and the field', async () => {
    const dir = await dirWith({ 'js.yaml': good.replace('timeoutMs: 1000', 'timeoutMs: -5') });
    await expect(loadProfiles(dir)).rejects.toThrow(/js\.yaml: field "limits\.timeoutMs"/);
  });

  it('stops on an unknown engine', async () => {
    const dir = await dirWith({ 'js.yaml': good.replace('engine: isolate', 'engine: vm2') });
    await expect(loadProfiles(dir)).rejects.toThrow(/js\.yaml: field "engine"/);
  });

  it('stops on an unknown field (a typo must not be ignored)', async () => {
    const dir = await dirWith({ 'js.yaml': `${good}timeoutMS: 10\n` });
    await expect(loadProfiles(dir)).rejects.toThrow(/js\.yaml/);
  });

  it('stops on invalid YAML', async () => {
    const dir = await dirWith({ 'js.yaml': 'name: [unclosed' });
    await expect(loadProfiles(dir)).rejects.toThrow(/js\.yaml: not valid YAML/);
  });

  it('stops when the name does not match the file', async () => {
    const dir = await dirWith({ 'other.yaml': good });
    await expect(loadProfiles(dir)).rejects.toThrow(/other\.yaml: field "name"/);
  });

  it('stops when there is no profile at all', async () => {
    const dir = await dirWith({});
    await expect(loadProfiles(dir)).rejects.toThrow(/no profiles/);
  });
});
