// The Lua scripts behind every budget decision. Each runs atomically inside Redis on Redis's own
// clock (TIME), so racing requests on any number of API processes can never admit more than a
// budget holds. Money is integer nano-units (see pricing.ts).

// Admits one run or tool call, or says why not. Nothing is written unless everything passes.
// KEYS: rate (GCRA state), task, agent day spend (hash: day, spent, reserved), reservation.
// ARGV: per-minute limit, per-day spend (nanos), worst-case cost (nanos), has-task flag,
//       count field ('runs' | 'toolCalls'), cap field ('maxRuns' | 'maxToolCalls').
export const ADMIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local day = math.floor(now / 86400000)
local interval = 60000 / tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > 60000 then
  return {'rate', tostring(math.ceil((next_tat - now - 60000) / 1000))}
end
local cost = tonumber(ARGV[3])
local has_task = ARGV[4] == '1'
if has_task then
  if redis.call('EXISTS', KEYS[2]) == 0 then return {'no_task', '0'} end
  if redis.call('HGET', KEYS[2], 'status') ~= 'active' then return {'exhausted', 'task'} end
  local count = tonumber(redis.call('HGET', KEYS[2], ARGV[5]))
  if count >= tonumber(redis.call('HGET', KEYS[2], ARGV[6])) then
    redis.call('HSET', KEYS[2], 'status', 'exhausted')
    return {'exhausted', ARGV[6]}
  end
  local committed = tonumber(redis.call('HGET', KEYS[2], 'spend')) + tonumber(redis.call('HGET', KEYS[2], 'reserved'))
  local left = tonumber(redis.call('HGET', KEYS[2], 'maxSpend')) - committed
  if cost > left then return {'exhausted', 'maxSpend', tostring(left)} end
end
if tonumber(redis.call('HGET', KEYS[3], 'day') or '-1') ~= day then
  redis.call('HSET', KEYS[3], 'day', day, 'spent', 0)
end
local day_left = tonumber(ARGV[2]) - tonumber(redis.call('HGET', KEYS[3], 'spent'))
  - tonumber(redis.call('HGET', KEYS[3], 'reserved') or '0')
if cost > day_left then return {'exhausted', 'spendPerDay', tostring(day_left)} end

redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(60000 + interval))
if has_task then
  redis.call('HINCRBY', KEYS[2], ARGV[5], 1)
  redis.call('HINCRBY', KEYS[2], 'reserved', cost)
end
redis.call('HINCRBY', KEYS[3], 'reserved', cost)
redis.call('EXPIRE', KEYS[3], 172800)
redis.call('HSET', KEYS[4], 'amount', cost, 'day', day, 'count', ARGV[5], 'task', ARGV[4])
redis.call('EXPIRE', KEYS[4], 172800)
return {'ok', '0'}
`;

// Settles a reservation with the actual cost and releases the rest; a refund (never started,
// cancelled while queued) also gives the run or tool call back. A second settle of the same
// reservation finds nothing and changes nothing. Marks the task exhausted once spend reaches it.
// KEYS: reservation, task, agent day spend. ARGV: actual cost (nanos), refund flag.
export const SETTLE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'none', ''} end
local r = redis.call('HMGET', KEYS[1], 'amount', 'day', 'count', 'task')
redis.call('DEL', KEYS[1])
local amount = tonumber(r[1])
local actual = math.min(tonumber(ARGV[1]), amount)
local exhausted = ''
if r[4] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'reserved', -amount)
  local spend = redis.call('HINCRBY', KEYS[2], 'spend', actual)
  if ARGV[2] == '1' then redis.call('HINCRBY', KEYS[2], r[3], -1) end
  if spend >= tonumber(redis.call('HGET', KEYS[2], 'maxSpend')) and redis.call('HGET', KEYS[2], 'status') == 'active' then
    redis.call('HSET', KEYS[2], 'status', 'exhausted')
    exhausted = 'maxSpend'
  end
end
redis.call('HINCRBY', KEYS[3], 'reserved', -amount)
if redis.call('HGET', KEYS[3], 'day') == r[2] then redis.call('HINCRBY', KEYS[3], 'spent', actual) end
return {'ok', exhausted}
`;

// Adds the agent's reported model usage to the task and to the agent's day; past a task cap the
// task is exhausted, and the answer names the first cap passed.
// KEYS: task, agent day spend. ARGV: tokens, cost (nanos), per-day spend (nanos).
export const REPORT_USAGE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'no_task', ''} end
local t = redis.call('TIME')
local day = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / 86400000)
if tonumber(redis.call('HGET', KEYS[2], 'day') or '-1') ~= day then
  redis.call('HSET', KEYS[2], 'day', day, 'spent', 0)
end
local day_spent = redis.call('HINCRBY', KEYS[2], 'spent', ARGV[2])
redis.call('EXPIRE', KEYS[2], 172800)
local tokens = redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
local spend = redis.call('HINCRBY', KEYS[1], 'spend', ARGV[2])
if tokens > tonumber(redis.call('HGET', KEYS[1], 'maxTokens')) then
  redis.call('HSET', KEYS[1], 'status', 'exhausted')
  return {'exhausted', 'maxTokens'}
end
if spend > tonumber(redis.call('HGET', KEYS[1], 'maxSpend')) then
  redis.call('HSET', KEYS[1], 'status', 'exhausted')
  return {'exhausted', 'maxSpend'}
end
if day_spent > tonumber(ARGV[3]) then return {'exhausted', 'spendPerDay'} end
return {'ok', ''}
`;
