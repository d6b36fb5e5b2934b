// Who is calling: resolved by the API's auth plugin, passed to every guard decision.
import type { Scopes } from './agent.ts';

export type Role = 'admin' | 'operator' | 'approver' | 'auditor' | 'agent';
/** The roles a human principal can have (the admin token is not one). */
export const HUMAN_ROLES = ['operator', 'approver', 'auditor'] as const;
export type HumanRole = (typeof HUMAN_ROLES)[number];

export type Principal =
  | { readonly role: 'admin'; readonly id: 'admin' }
  | { readonly role: HumanRole; readonly id: string; readonly name: string }
  | {
      readonly role: 'agent';
      readonly id: string;
      readonly agentId: string;
      readonly tokenId: string;
      readonly scopes: Scopes | undefined;
      readonly taskId: string | undefined;
    };
