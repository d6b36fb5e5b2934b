// `npm run audit -- verify [--dir DIR] [--archive DIR]... [--public-key FILE]... [--witness FILE]`:
// checks the audit log offline, live and archived segments of every writer together (default
// archive: $SANDGATE_AUDIT_ARCHIVE_DIR). Exit 0: every chain verifies; 1: names the first bad
// record or the missing segment; 2: usage or setup.
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditCheckpoint } from '../contract/audit.ts';
import { loadConfig } from '../contract/config.ts';
import { readCheckpointsFile, verifyAuditDirs } from '../guard/audit/audit-verify.ts';

const USAGE =
  'usage: npm run audit -- verify [--dir DIR] [--archive DIR]... [--public-key FILE]... [--witness FILE (JSON lines of checkpoints)]';

function usage(problem: string): never {
  console.error(`${problem}\n${USAGE}`);
  process.exit(2);
}

/** Exits once stdout and stderr are flushed: to a pipe they are written asynchronously, and an
 * exit right after a long output would cut it (a trace of a few hundred lines lost its tail). */
async function exit(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))));
  process.exit(code);
}

// `trace TASK`: a task's story from the files alone (bin/audit-trace.ts).
if (process.argv[2] === 'trace') await exit(await (await import('./audit-trace.ts')).runTrace(process.argv.slice(3)));

const args = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        dir: { type: 'string' },
        archive: { type: 'string', multiple: true },
        'public-key': { type: 'string', multiple: true },
        witness: { type: 'string' },
      },
    });
  } catch (e) {
    return usage((e as Error).message);
  }
})();
if (args.positionals.length !== 1 || args.positionals[0] !== 'verify') usage('expected the command `verify`');

// The same parsed configuration as the service: its data dir and its audit key's public half.
const config = (() => {
  try {
    return loadConfig();
  } catch (e) {
    return usage((e as Error).message);
  }
})();
const dataDir = config.SANDGATE_DATA_DIR;
const dir = args.values.dir ?? join(dataDir, 'audit');
const archives = args.values.archive ?? (config.SANDGATE_AUDIT_ARCHIVE_DIR ? [config.SANDGATE_AUDIT_ARCHIVE_DIR] : []);
const where = [dir, ...archives].join(', ');
const keyFile = config.SANDGATE_AUDIT_KEY_FILE ?? join(dataDir, 'keys', 'audit-signing.json');
const keyFiles = args.values['public-key'] ?? [join(dirname(keyFile), `${basename(keyFile, '.json')}.pub`)];

let publicKeys: string[];
let witnessCheckpoints: AuditCheckpoint[] = [];
try {
  publicKeys = await Promise.all(keyFiles.map((f) => readFile(f, 'utf8')));
  if (args.values.witness) witnessCheckpoints = await readCheckpointsFile(args.values.witness);
} catch (e) {
  usage((e as Error).message);
}

const result = await verifyAuditDirs([dir, ...archives], { publicKeys, witnessCheckpoints });
const witnessed = witnessCheckpoints.length > 0 ? `, ${witnessCheckpoints.length} witness checkpoints` : '';
if (result.ok) {
  // A chain not closed cleanly is a writer still running or killed: its last interval is unsigned.
  const closed = Object.values(result.head).filter((h) => h.closed).length;
  console.log(
    `audit ok: ${result.records} records in ${result.chains} chains, ${closed} closed cleanly${witnessed} (${where})`,
  );
  await exit(0);
}
const e = result.error!;
console.log(
  `audit FAILED at ${e.file}:${e.line}${e.id ? ` (${e.id})` : ''}: ${e.reason} [${result.records} records verified before it, ${where}]`,
);
await exit(1);
