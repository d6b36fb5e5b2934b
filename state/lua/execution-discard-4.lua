--[[
  Takes back a record made beside its request's audit record when that audit record could not be
  made durable: the request is refused (503) and, as if it had never been admitted, leaves no
  record, no index entry and no stream. Only a record that is still queued and never started is
  taken back, or one created running (runs here: its code waits for that audit record, so it has
  not run) that nothing has moved since; anything else is left alone (and the caller marks it
  rejected instead).

  KEYS[1] execution record
  KEYS[2] the agent's executions index
  KEYS[3] the task's executions index (written only with a task)
  KEYS[4] the execution's event stream
  ARGV[1] execution id
  ARGV[2] '1' when the run belongs to a task
  Returns 1 taken back, 0 left (started, moved on or gone).
]]
local record, agent_index, task_index, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local h = redis.call('HMGET', record, 'status', 'starts', 'bornRunning')
local untouched = h[1] == 'queued' and tonumber(h[2] or '0') == 0
local born_running = h[1] == 'running' and h[2] == '1' and h[3] == '1'
if not (untouched or born_running) then return 0 end
redis.call('DEL', record, stream)
redis.call('SREM', agent_index, id)
if ARGV[2] == '1' then redis.call('SREM', task_index, id) end
return 1
