--[[
  The admission side of the watch: one call per admission. Refuses work of a suspended agent or
  a paused task (naming the alert), applies a throttle, and updates the detectors that look at
  what is asked: loop (the same call again), spike (far above the agent's own rate), novelty
  (first use of a target by an agent with history), tainted flow (a tainted task reaching for an
  irreversible tool or a destination new to the task). It returns the detectors that fired; the
  caller raises their alerts (alert-raise).

  KEYS[1] the agent's suspended marker
  KEYS[2] the task's paused marker (any key when there is no task: it is only read)
  KEYS[3] the agent's throttle marker
  KEYS[4] the agent's throttle GCRA state
  KEYS[5] the loop window of this agent and this exact call
  KEYS[6] the agent's rate (hash: bucket, count, ewma, n, alerted)
  KEYS[7] the targets the agent has used (set)
  KEYS[8] the targets the task has used (set; written only with a task)
  KEYS[9] the agent's watch state (hash: since = last resume, ms; total = admissions)
  ARGV[1]  work id
  ARGV[2]  targets, JSON array: the tool or profile first ("tool:x" | "profile:x"), then "dest:host"
  ARGV[3]  the agent's per-minute limit for this kind of work
  ARGV[4]  '1' when the work belongs to a task
  ARGV[5]  loop: enabled '1', ARGV[6] repeats, ARGV[7] window ms
  ARGV[8]  spike: enabled '1', ARGV[9] bucket ms, ARGV[10] ratio, ARGV[11] min per bucket, ARGV[12] min history
  ARGV[13] novelty: enabled '1', ARGV[14] min history
  ARGV[15] tainted flow: enabled '1', ARGV[16] the task is tainted '1', ARGV[17] the tool is irreversible '1'
  ARGV[18] the throttle's share of the per-minute limit
  Returns {'held', 'agent_suspended' | 'task_paused', marker JSON} | {'throttled', retry-after s, marker JSON}
        | {'ok', trigger...}; a trigger is "detector|figure|figure…".
]]
-- @include "now"
-- @include "window"
local suspended, paused, throttle, throttle_gcra = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local loop_key, rate, agent_seen, task_seen, state = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local id, targets, per_minute, has_task = ARGV[1], cjson.decode(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'

local held = redis.call('GET', suspended)
if held then return {'held', 'agent_suspended', held} end
if has_task then
  held = redis.call('GET', paused)
  if held then return {'held', 'task_paused', held} end
end

local now = now_ms()
local throttled = redis.call('GET', throttle)
if throttled then
  local interval = 60000 / math.max(per_minute * tonumber(ARGV[18]), 0.001)
  local tat = math.max(tonumber(redis.call('GET', throttle_gcra) or '0'), now)
  if tat + interval - now > 60000 then return {'throttled', tostring(math.ceil((tat + interval - now - 60000) / 1000)), throttled} end
  redis.call('SET', throttle_gcra, tostring(tat + interval), 'PX', math.ceil(60000 + interval))
end

local since = tonumber(redis.call('HGET', state, 'since') or '0')
local total = redis.call('HINCRBY', state, 'total', 1)
local triggers = {}

if ARGV[5] == '1' then
  local count = window_count(loop_key, id, now, tonumber(ARGV[7]), since)
  if count >= tonumber(ARGV[6]) then table.insert(triggers, 'loop|' .. count) end
end

if ARGV[8] == '1' then
  local bucket_ms, ratio, floor, min_history = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
  local bucket = math.floor(now / bucket_ms)
  local r = redis.call('HMGET', rate, 'bucket', 'count', 'ewma', 'n', 'alerted')
  local last, count, ewma, n = tonumber(r[1] or bucket), tonumber(r[2] or '0'), tonumber(r[3] or '0'), tonumber(r[4] or '0')
  if bucket > last then
    -- Close the last bucket into the baseline, and the empty ones since (alpha 0.2).
    ewma = 0.2 * count + 0.8 * ewma
    for _ = 2, math.min(bucket - last, 50) do ewma = 0.8 * ewma end
    n = n + (bucket - last)
    count = 0
  end
  count = count + 1
  redis.call('HSET', rate, 'bucket', bucket, 'count', count, 'ewma', tostring(ewma), 'n', n)
  redis.call('PEXPIRE', rate, bucket_ms * 200)
  if n >= min_history and count >= floor and count > ratio * math.max(ewma, 1) and tonumber(r[5] or '-1') ~= bucket then
    redis.call('HSET', rate, 'alerted', bucket)
    table.insert(triggers, 'spike|' .. count .. '|' .. string.format('%.2f', ewma))
  end
end

for i, target in ipairs(targets) do
  local new_to_agent = redis.call('SADD', agent_seen, target) == 1
  local new_to_task = false
  if has_task then new_to_task = redis.call('SADD', task_seen, target) == 1 end
  if ARGV[13] == '1' and new_to_agent and total > tonumber(ARGV[14]) then table.insert(triggers, 'novelty|' .. target) end
  if ARGV[15] == '1' and ARGV[16] == '1' then
    if (i == 1 and ARGV[17] == '1') or (i > 1 and new_to_task) then table.insert(triggers, 'tainted_flow|' .. target) end
  end
end
redis.call('PEXPIRE', agent_seen, 30 * 86400000)
if has_task then redis.call('PEXPIRE', task_seen, 7 * 86400000) end
redis.call('PEXPIRE', state, 30 * 86400000)
return {'ok', unpack(triggers)}
