// Announces each pending approval to humans: a POST of the approval's JSON to the operator's
// webhook (chat, pager, ticketing). Best effort and bounded: the action waits for a decision
// either way, and an approval nobody sees simply expires (fail closed).
import type { Approval } from '../../contract/action.ts';

export interface AnnounceLog {
  warn(obj: object, msg: string): void;
}

export function createApprovalAnnouncer(
  url: string | undefined,
  log: AnnounceLog,
  timeoutMs = 5000,
): (approval: Approval) => void {
  if (!url) return () => {};
  return (approval) => {
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'approval.pending', approval, console: '/console/approvals' }),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    })
      .then((res) => {
        if (!res.ok)
          log.warn({ approval: approval.id, status: res.status }, 'approval webhook refused the announcement');
        return res.body?.cancel();
      })
      .catch((e: Error) => log.warn({ approval: approval.id, err: e.message }, 'approval webhook unreachable'));
  };
}
