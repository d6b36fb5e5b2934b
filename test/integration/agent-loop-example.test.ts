// examples/agent-loop.ts end to end against a real service: the task and its budget, the runs
// (one followed live), the email approved by a human and sent once, usage reports, the trace.
import { createServer } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { agentLoop } from '../../examples/agent-loop.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let base: string;
let gatewayPort: number;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

beforeAll(async () => {
  gatewayPort = await freePort();
  sg = await startSandgate(
    {
      SANDGATE_TOOLS_DIR: 'tools',
      SANDGATE_MAIL_GATEWAY_URL: `http://127.0.0.1:${gatewayPort}/send`,
      SANDGATE_MAIL_GATEWAY_TOKEN: 'demo',
    },
    'all',
    ['js', 'python'],
  );
  await sg.app!.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(sg.app!.server.address() as { port: number }).port}`;
}, 60_000);
afterAll(async () => {
  await sg?.stop();
});

it('the example agent loop runs end to end', async () => {
  const lines: string[] = [];
  const out = await agentLoop({
    baseUrl: base,
    adminToken: sg.config.SANDGATE_ADMIN_TOKEN!,
    gatewayPort,
    log: (l) => lines.push(l),
  });
  expect(out.runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
  expect(out.runs[0]!.stdout.trim().split('\n').at(-1)).toBe('13.875');
  expect(out.runs[1]!.result).toBe(13.875);
  expect(out.email.status).toBe('succeeded');
  expect(out.gatewayHits).toBe(1);
  expect(out.remaining).toMatchObject({ runs: 3, toolCalls: 1, tokens: 20_000 - 1900 });
  // The live lines of the first run, the human's decision and the story are printed.
  expect(lines.some((l) => /\[run ex_\S+\] stdout: read 12.5/.test(l))).toBe(true);
  expect(lines.some((l) => l.startsWith('[human] reviewing'))).toBe(true);
  const story = out.story.join('\n');
  expect(story).toMatch(/task created/);
  expect(story).toMatch(/reported 900 model tokens/);
  expect(story).toMatch(/send_email/);
  expect(lines.at(-1)).toBe(`  ${out.story.at(-1)}`);
}, 60_000);
