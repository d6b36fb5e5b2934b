// The tool allow-list: files validated at start-up (a bad one names file and field), argument
// schemas checked per call, and a tool whose endpoint or credential is missing is unavailable.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTools } from '../../guard/tools/tool-registry.ts';

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sandgate-tools-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const notify = (extra = '') => `name: notify
description: Notify someone
irreversible: true
cost: 0.5
args: { type: object, required: [who], properties: { who: { type: string, maxLength: 5 } } }
handler: { type: http, url: "\${NOTIFY_URL}/x", headers: { authorization: { env: NOTIFY_TOKEN, prefix: "Key " } } }
${extra}`;

describe('tool registry', () => {
  it('loads the shipped tools', async () => {
    const tools = await loadTools('tools', {});
    expect([...tools.keys()].sort()).toEqual(['delete_record', 'deploy', 'http_fetch', 'make_payment', 'send_email']);
    expect(tools.get('http_fetch')!.available).toBe(true);
    expect(tools.get('send_email')!.available).toBe(false); // no gateway configured
  });

  it('fills the endpoint from the environment, and is unavailable while a variable is missing', async () => {
    const dir = await dirWith({ 'notify.yaml': notify() });
    expect((await loadTools(dir, { NOTIFY_URL: 'http://gw' })).get('notify')).toMatchObject({
      available: false,
      url: 'http://gw/x',
    });
    expect((await loadTools(dir, { NOTIFY_URL: 'http://gw', NOTIFY_TOKEN: 't' })).get('notify')).toMatchObject({
      available: true,
    });
    expect((await loadTools(dir, { NOTIFY_TOKEN: 't' })).get('notify')).toMatchObject({ available: false, url: null });
  });

  it('checks arguments against the schema, naming every problem', async () => {
    const tool = (await loadTools(await dirWith({ 'notify.yaml': notify() }), {})).get('notify')!;
    expect(tool.checkArgs({ who: 'ann' })).toEqual([]);
    expect(tool.checkArgs({ who: 'annabel', extra: 1 })).toEqual([
      'args has an unknown property "extra"',
      'args.who must NOT have more than 5 characters',
    ]);
    expect(tool.checkArgs('nope')).toEqual(['args must be object']);
  });

  it.each([
    ['a field of the wrong type', notify().replace('cost: 0.5', 'cost: lots'), /notify\.yaml: field "cost"/],
    [
      'a name that is not the file name',
      notify().replace('name: notify', 'name: other'),
      /field "name": "other" must match the file name "notify"/,
    ],
    [
      'an argument schema that is not an object schema',
      notify().replace(/args: .*/, 'args: { type: string }'),
      /field "args": the argument schema must be/,
    ],
    [
      'an unknown JSON Schema keyword',
      notify().replace('maxLength: 5', 'maxLenght: 5'),
      /field "args": not a valid JSON Schema/,
    ],
    ['an unknown handler', notify().replace('type: http,', 'type: smtp,'), /field "handler.type"/],
    ['broken YAML', 'name: [', /not valid YAML/],
  ])('refuses %s, naming file and field', async (_, text, message) => {
    await expect(loadTools(await dirWith({ 'notify.yaml': text }), {})).rejects.toThrow(message);
  });
});
