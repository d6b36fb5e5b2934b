// Forty kill -9 cycles of the service under load, on one data directory: after each, the offline
// verify (`npm run audit -- verify`) passes on everything the crashed processes left, and every
// acknowledged (202) request has its execution.requested record.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { auditCounts, type Scenario, s, sleep } from './lib.ts';

const CYCLES = 40;
const LANES = 8;

export const auditCrash: Scenario = {
  name: 'audit-crash',
  budgetMs: 300_000,
  async run(ctx) {
    const redis = await ctx.redis();
    const inst = await ctx.instance(redis, ['js']);
    const dir = join(inst.dataDir, 'audit');
    const verifyArgs = [
      'bin/audit.ts',
      'verify',
      '--dir',
      dir,
      '--public-key',
      join(inst.dataDir, 'keys', 'audit-signing.pub'),
    ];
    const t0 = Date.now();
    const acknowledged: string[] = [];
    const verifyFailures: string[] = [];
    let token = '';
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const proc = await ctx.spawn(inst, 'all');
      if (!token)
        ({ token } = await inst.client.agent({ profiles: ['js'] }, { runsPerMinute: 100_000, spendPerDay: 1e6 }));
      let killed = false;
      const load = Promise.all(
        Array.from({ length: LANES }, async () => {
          for (let i = 0; i < 10_000 && !killed; i++) {
            const a = await inst.client
              .execute(token, { profile: 'js', code: `${i}`, reasoning: `cycle ${cycle}` })
              .catch(() => undefined);
            if (a?.status === 202) acknowledged.push(a.body.id as string);
          }
        }),
      );
      await sleep(200 + Math.floor(Math.random() * 400));
      proc.kill('SIGKILL');
      await proc.child.exited;
      killed = true;
      await load;
      try {
        await promisify(execFile)(process.execPath, verifyArgs, { timeout: 60_000 });
      } catch (e) {
        const err = e as { stdout?: string; stderr?: string };
        verifyFailures.push(`cycle ${cycle}: ${(err.stdout || err.stderr || String(e)).trim().split('\n')[0]}`);
      }
    }
    const requested = await auditCounts(inst.dataDir, 'execution.requested');
    const missing = acknowledged.filter((id) => !requested.has(id));
    const crashed = ctx.crashes();
    const problems = [
      ...verifyFailures,
      ...(missing.length
        ? [`${missing.length} acknowledged requests without an execution.requested record (first ${missing[0]})`]
        : []),
      ...crashed,
    ];
    return {
      line: `audit crash: ${CYCLES} kill -9 cycles under load, verify ok ${CYCLES - verifyFailures.length}/${CYCLES}, ${acknowledged.length} acknowledged, ${missing.length} missing execution.requested, ${crashed.length} crashed, ${s(Date.now() - t0)}`,
      problems,
    };
  },
};
