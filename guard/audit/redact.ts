// Defence in depth: callers must not put secrets into audit data, but if one slips through it
// must not become a permanent, hash-pinned part of the log. Redaction runs before hashing, so the
// chain commits to the redacted form only.

const SECRET_KEY = /token|authorization|secret|password|api[-_]?key|credential/i;
export const REDACTED = '[redacted]';

/**
 * A JSON-clean deep copy of `data` (JSON.stringify semantics: toJSON applied, undefined and
 * functions dropped, NaN → null) in which every value under a secret-looking key is replaced.
 * Numbers, booleans and null are kept: a count such as `tokens: 1200` is not a credential, and
 * redacting it would blind the usage trail. Throws on cycles and BigInt, like JSON.stringify.
 */
export function redact(data: Record<string, unknown>): Record<string, unknown> {
  // Most records hold no secret-looking key: then the plain JSON text (V8's fast path, no
  // replacer) is the redacted form. A key that matches shows in the text as it is (JSON escapes
  // none of the letters, '-' or '_' the pattern is made of), so a text with no match anywhere, in
  // keys or values, has no key to redact; any match, a value's included, takes the full walk.
  const plain = JSON.stringify(data);
  const text =
    plain !== undefined && !SECRET_KEY.test(plain)
      ? plain
      : JSON.stringify(data, (key, value: unknown) =>
          key !== '' &&
          SECRET_KEY.test(key) &&
          value !== null &&
          typeof value !== 'number' &&
          typeof value !== 'boolean'
            ? REDACTED
            : value,
        );
  if (text === undefined) throw new TypeError('audit data must be a JSON object');
  const copy: unknown = JSON.parse(text);
  if (copy === null || typeof copy !== 'object' || Array.isArray(copy))
    throw new TypeError('audit data must be a JSON object');
  return copy as Record<string, unknown>;
}
