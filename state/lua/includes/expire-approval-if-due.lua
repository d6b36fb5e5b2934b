-- expire_approval_if_due: an approval past its time expires, and so does its action (fail
-- closed). Returns true when it expired them now. (The global pending list is the caller's.)
local function expire_approval_if_due(approval, action, done_channel, now, outcome, at)
  if redis.call('HGET', approval, 'status') ~= 'pending' then return false end
  if now < tonumber(redis.call('HGET', approval, 'expiresAtMs')) then return false end
  redis.call('HSET', approval, 'status', 'expired', 'decidedAt', at)
  if redis.call('HGET', action, 'status') == 'awaiting_approval' then
    redis.call('HSET', action, 'status', 'expired', 'outcome', outcome, 'finishedAt', at)
    redis.call('PUBLISH', done_channel, redis.call('HGET', action, 'id') .. ' expired')
  end
  return true
end
