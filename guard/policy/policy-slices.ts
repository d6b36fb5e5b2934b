// Per-action slices of the policy set. Cedar evaluates every policy of the set it is given, and
// each costs about 2 µs in the WASM engine, yet a policy whose scope cannot match a request of
// this kind (action == another action; principal or resource of another type) is never satisfied
// and never evaluates its conditions, so it can neither decide nor raise an error: leaving it out
// gives the same answer. Anything this code cannot prove out of scope stays in (an `in` on a
// principal or resource, an action group, a template slot, a policy it cannot read).
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

/** A kind of request: its action and the entity types its principal and resource always have. */
export interface RequestKind {
  action: string;
  principalType: string;
  resourceType: string;
}

const ACTION_TYPE = 'Sandgate::Action';

type EntityRef = { type: string; id: string };
interface Scope {
  op: string;
  entity?: EntityRef;
  entities?: EntityRef[];
  entity_type?: string;
}

/** Can a principal or resource of `type` satisfy this scope? `in` may reach any type: kept. */
const typeMayMatch = (scope: Scope | undefined, type: string): boolean => {
  if (!scope) return true;
  if (scope.op === '==') return scope.entity?.type === undefined || scope.entity.type === type;
  if (scope.op === 'is') return scope.entity_type === undefined || scope.entity_type === type;
  return true;
};

/** Can `action` satisfy this action scope? `in` names a group or the action itself. */
const actionMayMatch = (scope: Scope | undefined, action: string, knownActions: ReadonlySet<string>): boolean => {
  if (!scope) return true;
  const named = scope.entity ? [scope.entity] : (scope.entities ?? []);
  if (named.length === 0) return true; // a form this code does not know: kept
  if (scope.op === '==') return named.some((e) => e.type === ACTION_TYPE && e.id === action);
  if (scope.op === 'in') {
    // A named action that is not one of the leaf actions may be a group holding this one.
    return named.some((e) => e.type !== ACTION_TYPE || e.id === action || !knownActions.has(e.id));
  }
  return true;
};

/** For each kind of request, the policies of `all` that a request of that kind could match. */
export function slicesFor<K extends string>(
  all: Record<string, string>,
  kinds: Record<K, RequestKind>,
  knownActions: ReadonlySet<string>,
): Record<K, Record<string, string>> {
  const scopes = Object.entries(all).map(([id, text]) => {
    const parsed = cedar.policyToJson(text); // once per policy, whatever the number of kinds
    const est =
      parsed.type === 'success'
        ? (parsed.json as unknown as { principal?: Scope; action?: Scope; resource?: Scope })
        : undefined;
    return { id, text, est };
  });
  const out = {} as Record<K, Record<string, string>>;
  for (const kind of Object.keys(kinds) as K[]) {
    const { action, principalType, resourceType } = kinds[kind];
    const slice: Record<string, string> = {};
    for (const { id, text, est } of scopes) {
      const keep =
        !est ||
        (actionMayMatch(est.action, action, knownActions) &&
          typeMayMatch(est.principal, principalType) &&
          typeMayMatch(est.resource, resourceType));
      if (keep) slice[id] = text;
    }
    out[kind] = slice;
  }
  return out;
}
