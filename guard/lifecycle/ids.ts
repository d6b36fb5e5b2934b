// Ids of work: a kind prefix and 120 random bits (url-safe), so ids are unguessable and say
// what they name.
import { randomBytes } from 'node:crypto';

export const newId = (kind: 'ex' | 'act' | 'apr' | 'alr'): string => `${kind}_${randomBytes(15).toString('base64url')}`;
