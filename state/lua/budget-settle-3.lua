--[[
  Settles a reservation with the actual cost and releases the rest; a refund (the work never
  ran) also gives the run or tool call back to the task. A second settle of the same reservation
  finds nothing and changes nothing. Marks the task exhausted once its spend reaches the cap.

  KEYS[1] the reservation
  KEYS[2] the task (hash)
  KEYS[3] the agent's day spend
  ARGV[1] actual cost (nanos; capped at what was reserved)
  ARGV[2] '1' for a refund
  Returns {'ok', exhausted cap or '', settled cost (nanos)} | {'none', '', '0'}.
]]
local reservation, task, day_spend = KEYS[1], KEYS[2], KEYS[3]
local refund = ARGV[2] == '1'
if redis.call('EXISTS', reservation) == 0 then return {'none', '', '0'} end
local r = redis.call('HMGET', reservation, 'amount', 'day', 'count', 'task')
redis.call('DEL', reservation)
local amount = tonumber(r[1])
local actual = math.min(tonumber(ARGV[1]), amount)
local exhausted = ''
if r[4] == '1' and redis.call('EXISTS', task) == 1 then
  redis.call('HINCRBY', task, 'reserved', -amount)
  local spend = redis.call('HINCRBY', task, 'spend', actual)
  if refund then redis.call('HINCRBY', task, r[3], -1) end
  if spend >= tonumber(redis.call('HGET', task, 'maxSpend')) and redis.call('HGET', task, 'status') == 'active' then
    redis.call('HSET', task, 'status', 'exhausted')
    exhausted = 'maxSpend'
  end
end
redis.call('HINCRBY', day_spend, 'reserved', -amount)
if redis.call('HGET', day_spend, 'day') == r[2] then redis.call('HINCRBY', day_spend, 'spent', actual) end
return {'ok', exhausted, tostring(actual)}
