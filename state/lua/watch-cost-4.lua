--[[
  Cost as a behavioural signal: the spend of an agent and of its task in a sliding window, from
  settled runs and tool calls and from reported model cost.

  KEYS[1] the agent's spend window (members "id|nanos", scored by time)
  KEYS[2] the task's spend window (any key when there is no task: it is not written)
  KEYS[3] the agent's watch state (hash: since; spend_sum, the window's sum)
  KEYS[4] the task's watch state (hash: since, spend_sum; likewise)
  ARGV[1] a unique member, ARGV[2] cost (nanos), ARGV[3] threshold per window (nanos), ARGV[4] window ms
  ARGV[5] '1' with a task
  Returns {'ok', trigger...}: "cost|agent|nanos" and/or "cost|task|nanos".
]]
-- @include "now"
-- The window's sum is kept beside it (field `spend_sum` of the state hash) and changed by what
-- enters and what leaves, so a call costs what moved, not the whole window (a busy agent's window
-- holds thousands of members). An empty or expired window starts the sum again; a lost sum is
-- recounted once.
local function spend(key, state_key, member, cost, now, window_ms)
  local since = tonumber(redis.call('HGET', state_key, 'since') or '0')
  local start = math.max(now - window_ms, since)
  local from = '(' .. start
  local sum = tonumber(redis.call('HGET', state_key, 'spend_sum') or '-1')
  if redis.call('EXISTS', key) == 0 then sum = 0 end
  if sum < 0 then
    sum = 0
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, start, '+inf')) do sum = sum + tonumber(string.match(m, '|(%d+)$')) end
  else
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', from)) do sum = sum - tonumber(string.match(m, '|(%d+)$')) end
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', from)
  redis.call('ZADD', key, now, member .. '|' .. cost)
  redis.call('PEXPIRE', key, window_ms + 1000)
  sum = math.max(0, sum + tonumber(cost))
  redis.call('HSET', state_key, 'spend_sum', sum)
  return sum
end
local now = now_ms()
local threshold, window_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local triggers = {}
local agent_sum = spend(KEYS[1], KEYS[3], ARGV[1], ARGV[2], now, window_ms)
if agent_sum > threshold then table.insert(triggers, 'cost|agent|' .. agent_sum) end
if ARGV[5] == '1' then
  local task_sum = spend(KEYS[2], KEYS[4], ARGV[1], ARGV[2], now, window_ms)
  if task_sum > threshold then table.insert(triggers, 'cost|task|' .. task_sum) end
end
return {'ok', unpack(triggers)}
