// `npm run faults [-- <scenario> ...]`: runs the fault scenarios one after the other, each in its
// own redis-server and processes, printing one line of figures per scenario and a verdict; exits
// 1 when anything was lost, duplicated, crashed, left behind or too slow. Not part of `npm test`.
import { auditCrash } from './audit-crash.ts';
import { burst } from './burst.ts';
import { dockerHung } from './docker-hung.ts';
import { dockerMissing } from './docker-missing.ts';
import { createContext, type Outcome, type Scenario } from './lib.ts';
import { redisRestart } from './redis-restart.ts';
import { runnerKill } from './runner-kill.ts';
import { shutdownCycles } from './shutdown-cycles.ts';
import { slowClients } from './slow-clients.ts';

const ALL: Scenario[] = [
  burst,
  runnerKill,
  redisRestart,
  dockerMissing,
  dockerHung,
  slowClients,
  shutdownCycles,
  auditCrash,
];

async function runOne(scenario: Scenario): Promise<Outcome> {
  const { ctx, close } = createContext();
  let timer: NodeJS.Timeout | undefined;
  const overBudget = new Promise<Outcome>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          line: `${scenario.name}: stopped after its budget of ${scenario.budgetMs / 1000} s`,
          problems: ['over budget'],
        }),
      scenario.budgetMs,
    );
  });
  const running = scenario.run(ctx).catch((e: Error) => ({
    line: `${scenario.name}: failed to run: ${e.message.split('\n')[0]}`,
    problems: [e.stack ?? e.message],
  }));
  try {
    return await Promise.race([running, overBudget]);
  } finally {
    clearTimeout(timer);
    await close();
  }
}

const names = process.argv.slice(2);
const unknown = names.filter((n) => !ALL.some((s) => s.name === n));
if (unknown.length) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${ALL.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const chosen = names.length ? ALL.filter((s) => names.includes(s.name)) : ALL;
const started = Date.now();
const failed: string[] = [];
for (const scenario of chosen) {
  const outcome = await runOne(scenario);
  console.log(outcome.line);
  if (outcome.problems.length) {
    failed.push(scenario.name);
    for (const p of outcome.problems) console.log(`  ! ${p}`);
  }
}
const took = ((Date.now() - started) / 1000).toFixed(1);
console.log(
  failed.length
    ? `faults: FAILED ${failed.length} of ${chosen.length} (${failed.join(', ')}) in ${took} s`
    : `faults: ok, ${chosen.length} of ${chosen.length} scenarios held in ${took} s`,
);
process.exit(failed.length ? 1 : 0);
