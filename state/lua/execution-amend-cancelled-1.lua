--[[
  A run cancelled while it ran is final at once (the caller is answered, waiters are told), but
  only its runner knows what it used: the runner adds its outcome (usage, output, the audit id
  of its end) once, beside the cancel's own outcome (whose status and reason stand).

  KEYS[1] execution record
  ARGV[1] the runner's outcome (JSON)
  Returns 1 added, 0 nothing to add to (not cancelled while running, or added already).
]]
local record = KEYS[1]
if redis.call('HGET', record, 'status') ~= 'cancelled' or redis.call('HGET', record, 'awaitingRunner') ~= '1' then return 0 end
redis.call('HSET', record, 'runnerOutcome', ARGV[1])
redis.call('HDEL', record, 'awaitingRunner')
return 1
