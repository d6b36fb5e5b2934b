// RFC 8785 (JSON Canonicalization Scheme) and sha256: the two primitives every audit hash and
// checkpoint signature is defined over, so that any other tool can recompute them.
import { hash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';

// The package is CommonJS whose typings declare an ES default export; under `nodenext` tsc takes
// that as `module.exports.default`, while Node hands over `module.exports`, the function itself.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/** Canonical JSON of a JSON value; throws on what JSON cannot hold (NaN, Infinity, undefined). */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON form');
  return text;
}

// crypto.hash: the one-shot form, markedly cheaper than createHash() for inputs this small.
export const sha256Hex = (text: string | Uint8Array): string => hash('sha256', text, 'hex');
