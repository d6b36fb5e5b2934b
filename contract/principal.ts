// Who is calling: resolved by the API's auth plugin, passed to every guard decision.
import type { Scopes } from './agent.ts';

export type Role = 'admin' | 'approver' | 'auditor' | 'agent';

export type Principal =
  | { readonly role: 'admin'; readonly id: 'admin' }
  | { readonly role: 'approver' | 'auditor'; readonly id: string; readonly name: string }
  | {
      readonly role: 'agent';
      readonly id: string;
      readonly agentId: string;
      readonly tokenId: string;
      readonly scopes: Scopes | undefined;
      readonly taskId: string | undefined;
    };
