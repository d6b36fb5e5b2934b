// What a tool handler returns: the call's outcome as data. A refused or failed call is a result
// with an error, never an exception; exceptions are faults of Sandgate itself.
import type { EgressDecision } from '../../../contract/action.ts';

export interface HandlerResult {
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
  egress: EgressDecision[];
  /** The result came from outside and is untrusted: the task that receives it becomes tainted. */
  untrustedSource?: string;
}
