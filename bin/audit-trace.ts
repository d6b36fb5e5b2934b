// `npm run audit -- trace TASK [--dir DIR]... [--json]`: a task's story read from the audit files
// alone, no Redis, so it survives the loss of the index. Prints one line per record (the same
// lines as GET /v1/tasks/:id/trace), or the records as JSON lines with --json. Exit 0: records
// found; 1: none of this task in those files; 2: usage. Reading is not verifying: run
// `npm run audit -- verify` on the same directories for that.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../contract/config.ts';
import { taskStoryFromFiles } from '../guard/audit/trace-files.ts';

const USAGE =
  'usage: npm run audit -- trace TASK [--dir DIR]... [--json]   (default dirs: $SANDGATE_DATA_DIR/audit and $SANDGATE_AUDIT_ARCHIVE_DIR)';

/**
 * One record, one line, nothing a terminal acts on: an agent writes reasoning, code and output,
 * so newlines (a forged line), escape sequences (a rewritten screen) and bidi controls (text that
 * reads other than it is) are printed escaped.
 */
export const oneLine = (text: string): string =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) =>
    c === '\n'
      ? '\\n'
      : c === '\r'
        ? '\\r'
        : c === '\t'
          ? '\\t'
          : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

const parse = (argv: readonly string[]) =>
  parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { dir: { type: 'string', multiple: true }, json: { type: 'boolean' } },
  });

export async function runTrace(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const [taskId, ...extra] = parsed.positionals;
  if (!taskId || extra.length) {
    console.error(`expected one task id\n${USAGE}`);
    return 2;
  }
  let dirs = parsed.values.dir;
  if (!dirs) {
    try {
      const config = loadConfig();
      dirs = [
        join(config.SANDGATE_DATA_DIR, 'audit'),
        ...(config.SANDGATE_AUDIT_ARCHIVE_DIR ? [config.SANDGATE_AUDIT_ARCHIVE_DIR] : []),
      ];
    } catch (e) {
      console.error(`${(e as Error).message}\n${USAGE}`);
      return 2;
    }
  }
  const { records, story, files, unreadable } = await taskStoryFromFiles(dirs, taskId);
  const where = dirs.join(', ');
  for (const u of unreadable) console.error(`unreadable line ${oneLine(u.file)}:${u.line} (skipped)`);
  if (records.length === 0) {
    console.error(`no records of task ${oneLine(taskId)} in ${files} chain files (${where})`);
    return 1;
  }
  if (parsed.values.json) for (const r of records) console.log(JSON.stringify(r));
  else {
    console.log(`task ${oneLine(taskId)}: ${records.length} records from ${files} chain files (${where})`);
    for (const line of story) console.log(oneLine(line));
  }
  return 0;
}
