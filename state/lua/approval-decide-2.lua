--[[
  A human's decision on a pending approval, moving the approval and its action together: decided
  once, never after it expired, never by the principal that asked for the action. The caller
  then takes it off the global pending list (a separate key, in another cluster slot).

  KEYS[1] approval record
  KEYS[2] action record
  ARGV[1] the actions' done channel
  ARGV[2] decision ('approve' | 'deny')
  ARGV[3] decider id
  ARGV[4] reason ('' for none)
  ARGV[5] decided at (ISO)
  ARGV[6] outcome of a denied action (JSON)
  ARGV[7] outcome of an expired action (JSON)
  Returns {verdict, detail}: ok | missing | expired | decided <status> | self | action <status>.
]]
-- @include "now"
-- @include "expire-approval-if-due"
local approval, action = KEYS[1], KEYS[2]
local done_channel, decision, decider, reason, at, denied_outcome, expired_outcome =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local status = redis.call('HGET', approval, 'status')
if not status then return {'missing', ''} end
if expire_approval_if_due(approval, action, done_channel, now_ms(), expired_outcome, at) then return {'expired', ''} end
if status ~= 'pending' then return {'decided', status} end
if redis.call('HGET', approval, 'agentId') == decider then return {'self', ''} end
local action_status = redis.call('HGET', action, 'status')
if action_status ~= 'awaiting_approval' then return {'action', action_status or 'missing'} end
if decision == 'approve' then
  redis.call('HSET', approval, 'status', 'approved', 'decidedBy', decider, 'reason', reason, 'decidedAt', at)
  redis.call('HSET', action, 'status', 'queued')
else
  redis.call('HSET', approval, 'status', 'denied', 'decidedBy', decider, 'reason', reason, 'decidedAt', at)
  redis.call('HSET', action, 'status', 'denied', 'outcome', denied_outcome, 'finishedAt', at)
  redis.call('PUBLISH', done_channel, redis.call('HGET', action, 'id') .. ' denied')
end
return {'ok', ''}
