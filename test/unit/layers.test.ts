// The layers import downwards only: contract ← state ← guard ← {runner, api} ← bin. A test, so
// an import against the arrows fails the build instead of waiting for a reviewer.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const MAY_IMPORT: Record<string, readonly string[]> = {
  contract: ['contract'],
  state: ['contract', 'state'],
  guard: ['contract', 'state', 'guard'],
  runner: ['contract', 'state', 'guard', 'runner'],
  api: ['contract', 'state', 'guard', 'api'],
  bin: ['contract', 'state', 'guard', 'runner', 'api', 'bin'],
  // The client agents import: the contract's types and itself, nothing of the service.
  client: ['contract', 'client'],
};
/** Packages only one place may use (DESIGN.md): the engines and the HTTP framework. */
const ONLY_IN: Record<string, string> = {
  'isolated-vm': 'runner/engines/isolate/',
  dockerode: 'runner/engines/docker/',
  fastify: 'api/',
  '@modelcontextprotocol': 'api/mcp/',
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const specifiers = (source: string) =>
  [...source.matchAll(/^\s*(?:import|export)[^'"]*from\s+'([^']+)'/gm)].map((m) => m[1]!);

describe('the layers', () => {
  const all = Object.keys(MAY_IMPORT).flatMap(files);

  it.each(Object.keys(MAY_IMPORT))('%s imports only from the layers below it', (layer) => {
    const wrong: string[] = [];
    for (const file of files(layer)) {
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = relative('.', normalize(join(dirname(file), spec))).split('/')[0]!;
        if (!MAY_IMPORT[layer]!.includes(target)) wrong.push(`${file} → ${spec}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the client imports types only (the contract, zod), and nothing but itself at run time', () => {
    const wrong: string[] = [];
    for (const file of files('client')) {
      const source = readFileSync(file, 'utf8');
      for (const m of source.matchAll(/^\s*import\s+(type\s+)?[^'"]*from\s+'([^']+)'/gm)) {
        const [, typeOnly, spec] = m as unknown as [string, string | undefined, string];
        // Types are erased at run time: the contract's (and zod's, which they are made of) are fine.
        if (!typeOnly && !spec.startsWith('./')) wrong.push(`${file} → ${spec}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('isolated-vm, dockerode and fastify each stay in their one place', () => {
    const wrong: string[] = [];
    for (const file of all) {
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        const only = ONLY_IN[spec.split('/')[0]!];
        if (only && !file.startsWith(only) && !file.startsWith('bin/')) wrong.push(`${file} → ${spec}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
