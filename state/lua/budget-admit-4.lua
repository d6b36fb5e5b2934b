--[[
  Admits one run or tool call, or says why not, on Redis's clock; nothing is written unless
  everything passes. Racing requests on any number of API processes can never admit more than a
  budget holds. Money is integer nano-units.

  KEYS[1] the agent's GCRA state for this kind of work
  KEYS[2] the task (hash)
  KEYS[3] the agent's day spend (hash: day, spent, reserved)
  KEYS[4] the reservation of this work
  ARGV[1] per-minute limit
  ARGV[2] per-day spend (nanos)
  ARGV[3] worst-case cost (nanos)
  ARGV[4] '1' when the work belongs to a task
  ARGV[5] the task's count field ('runs' | 'toolCalls')
  ARGV[6] the task's cap field ('maxRuns' | 'maxToolCalls')
  Returns {'ok'} | {'rate', retry-after s} | {'no_task'} | {'exhausted', cap, [left nanos]}.
]]
-- @include "now"
local rate, task, day_spend, reservation = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local per_minute, per_day, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local has_task, count_field, cap_field = ARGV[4] == '1', ARGV[5], ARGV[6]

local now = now_ms()
local day = math.floor(now / 86400000)
local interval = 60000 / per_minute
local tat = tonumber(redis.call('GET', rate) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > 60000 then
  return {'rate', tostring(math.ceil((next_tat - now - 60000) / 1000))}
end
if has_task then
  if redis.call('EXISTS', task) == 0 then return {'no_task', '0'} end
  if redis.call('HGET', task, 'status') ~= 'active' then return {'exhausted', 'task'} end
  local count = tonumber(redis.call('HGET', task, count_field))
  if count >= tonumber(redis.call('HGET', task, cap_field)) then
    redis.call('HSET', task, 'status', 'exhausted')
    return {'exhausted', cap_field}
  end
  local committed = tonumber(redis.call('HGET', task, 'spend')) + tonumber(redis.call('HGET', task, 'reserved'))
  local left = tonumber(redis.call('HGET', task, 'maxSpend')) - committed
  if cost > left then return {'exhausted', 'maxSpend', tostring(left)} end
end
if tonumber(redis.call('HGET', day_spend, 'day') or '-1') ~= day then
  redis.call('HSET', day_spend, 'day', day, 'spent', 0)
end
local day_left = per_day - tonumber(redis.call('HGET', day_spend, 'spent')) - tonumber(redis.call('HGET', day_spend, 'reserved') or '0')
if cost > day_left then return {'exhausted', 'spendPerDay', tostring(day_left)} end

redis.call('SET', rate, tostring(next_tat), 'PX', math.ceil(60000 + interval))
if has_task then
  redis.call('HINCRBY', task, count_field, 1)
  redis.call('HINCRBY', task, 'reserved', cost)
end
redis.call('HINCRBY', day_spend, 'reserved', cost)
redis.call('EXPIRE', day_spend, 172800)
redis.call('HSET', reservation, 'amount', cost, 'day', day, 'count', count_field, 'task', ARGV[4])
redis.call('EXPIRE', reservation, 172800)
return {'ok', '0'}
