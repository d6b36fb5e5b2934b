// Whether Cedar needs the schema to decide a request, or only to check its types (see
// createPolicyDecisionPoint's checkRequests).
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

/**
 * A flat schema gives a decision nothing but type checks: no entity or action hierarchy (which
 * only the schema would tell Cedar, so `in` would answer differently without it) and only
 * primitive attributes (an extension or entity type would parse differently without it).
 */
export function schemaIsFlat(schemaText: string): boolean {
  const json = cedar.schemaToJson(schemaText);
  if (json.type !== 'success') return false;
  const PRIMITIVE = new Set(['String', 'Bool', 'Long']);
  type T = { type?: string; name?: string; element?: T; attributes?: Record<string, T> };
  const flatType = (t: T | undefined): boolean =>
    !t ||
    (t.type === 'Set' && flatType(t.element)) ||
    (t.type === 'Record' && Object.values(t.attributes ?? {}).every(flatType)) ||
    ((t.type === 'EntityOrCommon' || t.type === 'String' || t.type === 'Boolean' || t.type === 'Long') &&
      (t.type !== 'EntityOrCommon' || PRIMITIVE.has(t.name ?? '')));
  return Object.values(json.json as Record<string, { entityTypes?: object; actions?: object }>).every((ns) => {
    const types = Object.values(ns.entityTypes ?? {}) as Array<{ memberOfTypes?: string[]; shape?: T; tags?: T }>;
    const actions = Object.values(ns.actions ?? {}) as Array<{ memberOf?: unknown[]; appliesTo?: { context?: T } }>;
    return (
      types.every((e) => !e.memberOfTypes?.length && !e.tags && flatType(e.shape)) &&
      actions.every((a) => !a.memberOf?.length && flatType(a.appliesTo?.context))
    );
  });
}
