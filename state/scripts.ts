// The Lua scripts (state/lua/*.lua, one per file, key count in the name, KEYS and ARGV named in
// each header) and one typed wrapper per script, so callers pass named keys and arguments and
// never count positions. `-- @include "name"` pulls in lua/includes/name.lua. Each call is an
// EVALSHA (an EVAL when Redis has not seen the script yet).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STREAM_MAX_LEN } from './event-streams.ts';
import { pairsOf, type RedisClient } from './redis-client.ts';

const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'lua');

/** A script's source with its includes in place (one level deep, which is all they need). */
export function luaSource(name: string): string {
  return readFileSync(join(LUA_DIR, `${name}.lua`), 'utf8').replace(/^-- @include "([\w-]+)"$/gm, (_, inc: string) =>
    readFileSync(join(LUA_DIR, 'includes', `${inc}.lua`), 'utf8'),
  );
}

const NAMES = [
  'transition-1',
  'start-4',
  'execution-create-7',
  'execution-amend-cancelled-1',
  'execution-discard-4',
  'budget-admit-4',
  'budget-settle-3',
  'budget-report-usage-2',
  'action-create-3',
  'action-create-awaiting-4',
  'approval-decide-2',
  'approval-expire-2',
  'approval-consume-1',
  'watch-admit-9',
  'watch-result-3',
  'watch-refusal-2',
  'watch-cost-4',
  'alert-raise-4',
  'alert-update-2',
] as const;
type ScriptName = (typeof NAMES)[number];

/** A script's name by its SHA-1 (tests that watch what is sent). */
export const scriptNameOf = (sha: string): ScriptName | undefined => [...scripts()].find(([, s]) => s.sha === sha)?.[0];

export interface Scripts {
  /** queued → running unless the agent is suspended or the task paused; `event` joins its stream. */
  start(
    k: { record: string; suspended: string; paused: string; stream: string },
    a: { ttlS: number; hasTask: boolean; event?: string | undefined; fields: Record<string, string> },
  ): Promise<'started' | 'held' | 'refused' | 'missing'>;
  transition(
    k: { record: string },
    a: { doneChannel: string; to: string; ttlS: number; from: readonly string[]; fields: Record<string, string> },
  ): Promise<1 | 0 | -1>;
  /** transition(), and the record's fields right after the move, read in the same call. */
  transitionAndRead(
    k: { record: string },
    a: { doneChannel: string; to: string; ttlS: number; from: readonly string[]; fields: Record<string, string> },
  ): Promise<{ moved: 1 | 0 | -1; fields?: Record<string, string> }>;
  /** 0 revoked, 1 created queued, 2 created running (`start`), 3 created queued because held. */
  executionCreate(
    k: {
      record: string;
      revoked: string;
      agentIndex: string;
      taskIndex: string;
      stream: string;
      suspended: string;
      paused: string;
    },
    a: {
      id: string;
      meta: string;
      ttlS: number;
      hasTask: boolean;
      event?: string | undefined;
      start?: { event?: string | undefined; fields: Record<string, string> } | undefined;
    },
  ): Promise<0 | 1 | 2 | 3>;
  executionAmendCancelled(k: { record: string }, a: { outcome: string }): Promise<boolean>;
  executionDiscard(
    k: { record: string; agentIndex: string; taskIndex: string; stream: string },
    a: { id: string; hasTask: boolean },
  ): Promise<boolean>;
  budgetAdmit(
    k: { rate: string; task: string; daySpend: string; reservation: string },
    a: {
      perMinute: number;
      perDayNanos: number;
      costNanos: number;
      hasTask: boolean;
      countField: string;
      capField: string;
    },
  ): Promise<[string, string, string?]>;
  budgetSettle(
    k: { reservation: string; task: string; daySpend: string },
    a: { costNanos: number; refund: boolean },
  ): Promise<[string, string, string]>;
  budgetReportUsage(
    k: { task: string; daySpend: string },
    a: { tokens: number; costNanos: number; perDayNanos: number },
  ): Promise<[string, string]>;
  actionCreate(
    k: { action: string; revoked: string; agentIndex: string },
    a: { id: string; meta: string; ttlS: number },
  ): Promise<boolean>;
  actionCreateAwaiting(
    k: { action: string; revoked: string; agentIndex: string; approval: string },
    a: {
      id: string;
      meta: string;
      ttlS: number;
      approvalId: string;
      data: string;
      approvalTtlMs: number;
      agentId: string;
    },
  ): Promise<number>;
  approvalDecide(
    k: { approval: string; action: string },
    a: {
      doneChannel: string;
      decision: 'approve' | 'deny';
      decider: string;
      reason: string;
      at: string;
      deniedOutcome: string;
      expiredOutcome: string;
    },
  ): Promise<[string, string]>;
  approvalExpire(
    k: { approval: string; action: string },
    a: { doneChannel: string; at: string; expiredOutcome: string },
  ): Promise<boolean>;
  approvalConsume(k: { approval: string }, a: { actionId: string; argsHash: string }): Promise<boolean>;
  watchAdmit(
    k: {
      suspended: string;
      paused: string;
      throttle: string;
      throttleRate: string;
      loop: string;
      rate: string;
      agentSeen: string;
      taskSeen: string;
      state: string;
    },
    a: {
      id: string;
      targets: readonly string[];
      perMinute: number;
      hasTask: boolean;
      loop: { enabled: boolean; repeats: number; windowMs: number };
      spike: { enabled: boolean; bucketMs: number; ratio: number; minPerBucket: number; minHistory: number };
      novelty: { enabled: boolean; minHistory: number };
      taintedFlow: { enabled: boolean; tainted: boolean; irreversible: boolean };
      throttleFactor: number;
    },
  ): Promise<string[]>;
  watchResult(
    k: { result: string; refusals: string; state: string },
    a: {
      id: string;
      countResult: boolean;
      resultRepeats: number;
      windowMs: number;
      egressRefusals: number;
      probing: { enabled: boolean; refusals: number; windowMs: number };
    },
  ): Promise<string[]>;
  watchRefusal(
    k: { refusals: string; state: string },
    a: { member: string; refusals: number; windowMs: number },
  ): Promise<string[]>;
  watchCost(
    k: { agentSpend: string; taskSpend: string; agentState: string; taskState: string },
    a: { member: string; costNanos: number; thresholdNanos: number; windowMs: number; hasTask: boolean },
  ): Promise<string[]>;
  alertRaise(
    k: { open: string; record: string; ofAgent: string; marker: string },
    a: {
      id: string;
      nowMs: number;
      fields: string;
      auditIds: string;
      markerValue: string;
      setMarker: boolean;
      markerTtlS: number;
      ttlS: number;
    },
  ): Promise<[string, string]>;
  alertUpdate(
    k: { record: string; open: string },
    a: { to: 'acknowledged' | 'resolved'; by: string; reason: string; at: string },
  ): Promise<[string, string?]>;
}

interface Loaded {
  sha: string;
  lua: string;
  keys: number;
}
let loaded: Map<ScriptName, Loaded> | undefined;
/** Each script's source and SHA-1, read once, on first use. */
function scripts(): Map<ScriptName, Loaded> {
  loaded ??= new Map(
    NAMES.map((name) => {
      const lua = luaSource(name);
      const sha = createHash('sha1').update(lua).digest('hex');
      return [name, { sha, lua, keys: Number(name.slice(name.lastIndexOf('-') + 1)) }];
    }),
  );
  return loaded;
}

const isNoScript = (e: unknown) => e instanceof Error && e.message.startsWith('NOSCRIPT');

// EVALSHA, then EVAL once when Redis does not have it (after a restart, or on a new node): plain
// commands rather than ioredis' defineCommand, whose scripts every auto-pipelined batch copies
// (a cost on every round trip of a run).
export function defineScripts(redis: RedisClient): Scripts {
  const call = async (name: ScriptName, ...keysAndArgs: Array<string | number>): Promise<unknown> => {
    const s = scripts().get(name)!;
    const args = keysAndArgs.map(String);
    try {
      return await redis.evalsha(s.sha, s.keys, ...args);
    } catch (e) {
      if (!isNoScript(e)) throw e;
      return redis.eval(s.lua, s.keys, ...args);
    }
  };
  const flag = (b: boolean) => (b ? '1' : '0');
  const transitionCall = (
    k: Parameters<Scripts['transition']>[0],
    a: Parameters<Scripts['transition']>[1],
    read: boolean,
  ) =>
    call(
      'transition-1',
      k.record,
      a.doneChannel,
      a.to,
      a.ttlS,
      flag(read),
      a.from.length,
      ...a.from,
      ...Object.entries(a.fields).flat(),
    );

  return {
    async start(k, a) {
      const r = Number(
        await call(
          'start-4',
          k.record,
          k.suspended,
          k.paused,
          k.stream,
          a.ttlS,
          flag(a.hasTask),
          a.event ?? '',
          STREAM_MAX_LEN,
          ...Object.entries(a.fields).flat(),
        ),
      );
      return r === 1 ? 'started' : r === 2 ? 'held' : r === 0 ? 'refused' : 'missing';
    },
    async transition(k, a) {
      return (await transitionCall(k, a, false)) as 1 | 0 | -1;
    },
    async transitionAndRead(k, a) {
      const r = (await transitionCall(k, a, true)) as 0 | -1 | [1, string[]];
      return Array.isArray(r) ? { moved: 1, fields: pairsOf(r[1]) } : { moved: r };
    },
    async executionCreate(k, a) {
      return Number(
        await call(
          'execution-create-7',
          k.record,
          k.revoked,
          k.agentIndex,
          k.taskIndex,
          k.stream,
          k.suspended,
          k.paused,
          a.id,
          a.meta,
          a.ttlS,
          flag(a.hasTask),
          a.event ?? '',
          STREAM_MAX_LEN,
          flag(a.start !== undefined),
          a.start?.event ?? '',
          ...Object.entries(a.start?.fields ?? {}).flat(),
        ),
      ) as 0 | 1 | 2 | 3;
    },
    async executionDiscard(k, a) {
      return (
        (await call('execution-discard-4', k.record, k.agentIndex, k.taskIndex, k.stream, a.id, flag(a.hasTask))) === 1
      );
    },
    async executionAmendCancelled(k, a) {
      return (await call('execution-amend-cancelled-1', k.record, a.outcome)) === 1;
    },
    async budgetAdmit(k, a) {
      return (await call(
        'budget-admit-4',
        k.rate,
        k.task,
        k.daySpend,
        k.reservation,
        a.perMinute,
        a.perDayNanos,
        a.costNanos,
        flag(a.hasTask),
        a.countField,
        a.capField,
      )) as [string, string, string?];
    },
    async budgetSettle(k, a) {
      return (await call('budget-settle-3', k.reservation, k.task, k.daySpend, a.costNanos, flag(a.refund))) as [
        string,
        string,
        string,
      ];
    },
    async budgetReportUsage(k, a) {
      return (await call('budget-report-usage-2', k.task, k.daySpend, a.tokens, a.costNanos, a.perDayNanos)) as [
        string,
        string,
      ];
    },
    async actionCreate(k, a) {
      return (await call('action-create-3', k.action, k.revoked, k.agentIndex, a.id, a.meta, a.ttlS)) === 1;
    },
    async actionCreateAwaiting(k, a) {
      const r = await call(
        'action-create-awaiting-4',
        k.action,
        k.revoked,
        k.agentIndex,
        k.approval,
        a.id,
        a.meta,
        a.ttlS,
        a.approvalId,
        a.data,
        a.approvalTtlMs,
        a.agentId,
      );
      return Number(r);
    },
    async approvalDecide(k, a) {
      return (await call(
        'approval-decide-2',
        k.approval,
        k.action,
        a.doneChannel,
        a.decision,
        a.decider,
        a.reason,
        a.at,
        a.deniedOutcome,
        a.expiredOutcome,
      )) as [string, string];
    },
    async approvalExpire(k, a) {
      return (await call('approval-expire-2', k.approval, k.action, a.doneChannel, a.at, a.expiredOutcome)) === 1;
    },
    async approvalConsume(k, a) {
      return (await call('approval-consume-1', k.approval, a.actionId, a.argsHash)) === 1;
    },
    async watchAdmit(k, a) {
      return (await call(
        'watch-admit-9',
        k.suspended,
        k.paused,
        k.throttle,
        k.throttleRate,
        k.loop,
        k.rate,
        k.agentSeen,
        k.taskSeen,
        k.state,
        a.id,
        JSON.stringify(a.targets),
        a.perMinute,
        flag(a.hasTask),
        flag(a.loop.enabled),
        a.loop.repeats,
        a.loop.windowMs,
        flag(a.spike.enabled),
        a.spike.bucketMs,
        a.spike.ratio,
        a.spike.minPerBucket,
        a.spike.minHistory,
        flag(a.novelty.enabled),
        a.novelty.minHistory,
        flag(a.taintedFlow.enabled),
        flag(a.taintedFlow.tainted),
        flag(a.taintedFlow.irreversible),
        a.throttleFactor,
      )) as string[];
    },
    async watchResult(k, a) {
      return (await call(
        'watch-result-3',
        k.result,
        k.refusals,
        k.state,
        a.id,
        flag(a.countResult),
        a.resultRepeats,
        a.windowMs,
        a.egressRefusals,
        flag(a.probing.enabled),
        a.probing.refusals,
        a.probing.windowMs,
      )) as string[];
    },
    async watchRefusal(k, a) {
      return (await call('watch-refusal-2', k.refusals, k.state, a.member, a.refusals, a.windowMs)) as string[];
    },
    async watchCost(k, a) {
      return (await call(
        'watch-cost-4',
        k.agentSpend,
        k.taskSpend,
        k.agentState,
        k.taskState,
        a.member,
        a.costNanos,
        a.thresholdNanos,
        a.windowMs,
        flag(a.hasTask),
      )) as string[];
    },
    async alertRaise(k, a) {
      return (await call(
        'alert-raise-4',
        k.open,
        k.record,
        k.ofAgent,
        k.marker,
        a.id,
        a.nowMs,
        a.fields,
        a.auditIds,
        a.markerValue,
        flag(a.setMarker),
        a.markerTtlS,
        a.ttlS,
      )) as [string, string];
    },
    async alertUpdate(k, a) {
      return (await call('alert-update-2', k.record, k.open, a.to, a.by, a.reason, a.at)) as [string, string?];
    },
  };
}
