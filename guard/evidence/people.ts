// Names for the ids that records cite as who did something: human principals by their record,
// agents by theirs, the admin token and the detectors by what they are. An id that no longer
// resolves stays in the answer, named as unknown, so nothing cited goes unexplained.
import type { People } from '../../contract/console.ts';
import type { AgentStore } from '../../state/agents.ts';
import type { PrincipalStore } from '../../state/principals.ts';

export interface PeopleDeps {
  principals: Pick<PrincipalStore, 'get'>;
  agents: Pick<AgentStore, 'get'>;
}

/** The ids a record names as actors: its principal and any `by` in its data. */
export function actorsOf(r: { principalId?: string | undefined; data: Record<string, unknown> }): string[] {
  const out: string[] = [];
  if (r.principalId) out.push(r.principalId);
  if (typeof r.data.by === 'string') out.push(r.data.by);
  return out;
}

export async function namePeople(ids: Iterable<string>, deps: PeopleDeps): Promise<People> {
  const unique = [...new Set(ids)].slice(0, 500);
  const named = await Promise.all(
    unique.map(async (id): Promise<[string, { name: string; role: string }]> => {
      if (id === 'admin') return [id, { name: 'admin', role: 'admin' }];
      if (id.startsWith('detector:')) return [id, { name: `the ${id.slice(9)} detector`, role: 'detector' }];
      if (id.startsWith('ag_')) {
        const agent = await deps.agents.get(id);
        return [id, { name: agent?.name ?? '(unknown agent)', role: 'agent' }];
      }
      const human = await deps.principals.get(id);
      return [id, human ? { name: human.name, role: human.role } : { name: '(unknown principal)', role: 'unknown' }];
    }),
  );
  return Object.fromEntries(named);
}
