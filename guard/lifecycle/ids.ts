// Ids of work: a kind prefix, the agent's hash tag (so a route given only an id finds the key in
// the agent's slot of a Redis Cluster) and 120 random bits, so ids are unguessable and say what
// they name. The format and its strict parser live with the keys (state/keys.ts).
import { newWorkId } from '../../state/keys.ts';

export const newId = (kind: 'ex' | 'act' | 'apr' | 'alr', agentId: string): string => newWorkId(kind, agentId);
