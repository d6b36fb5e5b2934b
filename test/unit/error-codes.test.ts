// Every code the API can answer with, and every code a run or a tool call can end with, is in the
// README's error tables, with the right status; and nothing is documented that does not exist.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, RESULT_ERRORS, resultError } from '../../contract/errors.ts';

const readme = readFileSync('README.md', 'utf8');
const section = readme.slice(
  readme.indexOf('## Error codes'),
  readme.indexOf('\n## ', readme.indexOf('## Error codes') + 1),
);
const tables = section.split('**The `error` of a run or a tool call**');
const rows = (text: string) =>
  [...text.matchAll(/^\| `([a-z_]+)` \| ([^|]+) \|/gm)].map((m) => [m[1]!, m[2]!.trim()] as const);

describe('the error registry and its documentation', () => {
  it('documents every request error with its status, and only those', () => {
    const documented = Object.fromEntries(rows(tables[0]!));
    expect(Object.keys(documented).sort()).toEqual(Object.keys(ERRORS).sort());
    for (const [code, status] of Object.entries(ERRORS)) expect(documented[code], code).toBe(String(status));
  });

  it('documents every result error, and only those', () => {
    expect(
      rows(tables[1] ?? '')
        .map(([code]) => code)
        .sort(),
    ).toEqual(Object.keys(RESULT_ERRORS).sort());
  });

  it('builds each result error with its code and a non-empty message', () => {
    expect(resultError('nonzero_exit', 3)).toEqual({ code: 'nonzero_exit', message: 'the program exited with code 3' });
    expect(resultError('timed_out', 1500).message).toBe('the run passed its 1500 ms wall-clock limit');
    expect(resultError('approval_denied', null).message).toBe('denied by an approver');
    expect(resultError('approval_denied', 'no').message).toBe('denied by an approver: no');
    for (const code of Object.keys(RESULT_ERRORS) as Array<keyof typeof RESULT_ERRORS>) {
      const e = (resultError as (c: string, ...a: unknown[]) => { code: string; message: string })(code, 'x', 1);
      expect(e.code).toBe(code);
      expect(e.message.length, code).toBeGreaterThan(0);
    }
  });
});
