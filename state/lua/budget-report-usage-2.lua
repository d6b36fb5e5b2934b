--[[
  Adds the agent's reported model usage to the task and to the agent's day; past a task cap the
  task is exhausted, and the answer names the first cap passed.

  KEYS[1] the task (hash)
  KEYS[2] the agent's day spend
  ARGV[1] tokens
  ARGV[2] cost (nanos)
  ARGV[3] per-day spend (nanos)
  Returns {'ok'} | {'no_task'} | {'exhausted', cap}.
]]
-- @include "now"
local task, day_spend = KEYS[1], KEYS[2]
local tokens, cost, per_day = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', task) == 0 then return {'no_task', ''} end
local day = math.floor(now_ms() / 86400000)
if tonumber(redis.call('HGET', day_spend, 'day') or '-1') ~= day then
  redis.call('HSET', day_spend, 'day', day, 'spent', 0)
end
local day_spent = redis.call('HINCRBY', day_spend, 'spent', cost)
redis.call('EXPIRE', day_spend, 172800)
local used_tokens = redis.call('HINCRBY', task, 'tokens', tokens)
local spend = redis.call('HINCRBY', task, 'spend', cost)
if used_tokens > tonumber(redis.call('HGET', task, 'maxTokens')) then
  redis.call('HSET', task, 'status', 'exhausted')
  return {'exhausted', 'maxTokens'}
end
if spend > tonumber(redis.call('HGET', task, 'maxSpend')) then
  redis.call('HSET', task, 'status', 'exhausted')
  return {'exhausted', 'maxSpend'}
end
if day_spent > per_day then return {'exhausted', 'spendPerDay'} end
return {'ok', ''}
