--[[
  A human's decision on a pending approval, moving the approval and its action together: decided
  once, never after it expired, never by the principal that asked for the action.

  KEYS[1] approval record
  KEYS[2] action record
  KEYS[3] pending approvals
  KEYS[4] the actions' done channel
  ARGV[1] decision ('approve' | 'deny')
  ARGV[2] decider id
  ARGV[3] reason ('' for none)
  ARGV[4] decided at (ISO)
  ARGV[5] outcome of a denied action (JSON)
  ARGV[6] outcome of an expired action (JSON)
  Returns {verdict, detail}: ok | missing | expired | decided <status> | self | action <status>.
]]
-- @include "now"
-- @include "expire-approval-if-due"
local approval, action, pending, done_channel = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local decision, decider, reason, at, denied_outcome, expired_outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local status = redis.call('HGET', approval, 'status')
if not status then return {'missing', ''} end
if expire_approval_if_due(approval, action, pending, done_channel, now_ms(), expired_outcome, at) then return {'expired', ''} end
if status ~= 'pending' then return {'decided', status} end
if redis.call('HGET', approval, 'agentId') == decider then return {'self', ''} end
local action_status = redis.call('HGET', action, 'status')
if action_status ~= 'awaiting_approval' then return {'action', action_status or 'missing'} end
redis.call('ZREM', pending, redis.call('HGET', approval, 'id'))
if decision == 'approve' then
  redis.call('HSET', approval, 'status', 'approved', 'decidedBy', decider, 'reason', reason, 'decidedAt', at)
  redis.call('HSET', action, 'status', 'queued')
else
  redis.call('HSET', approval, 'status', 'denied', 'decidedBy', decider, 'reason', reason, 'decidedAt', at)
  redis.call('HSET', action, 'status', 'denied', 'outcome', denied_outcome, 'finishedAt', at)
  redis.call('PUBLISH', done_channel, redis.call('HGET', action, 'id') .. ' denied')
end
return {'ok', ''}
