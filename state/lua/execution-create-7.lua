--[[
  Admission's last step: the execution record is created only while the agent is not revoked,
  in one step, so no request admitted after a revocation can slip in between a check and the
  write. The id joins the agent's index and, with a task, the task's.

  A run this process starts at once (runs here) is created running: the start's own step
  (start-4: queued → running unless the agent is suspended or the task paused) is done here, in
  the same call, so it costs no round trip of its own. Held, it is created queued (it waits on
  the queue). Its code still waits for the request's audit record, made durable beside this.

  KEYS[1] execution record
  KEYS[2] the agent's revoked marker
  KEYS[3] the agent's executions index
  KEYS[4] the task's executions index (written only with a task)
  KEYS[5] the execution's event stream
  KEYS[6] the agent's suspended marker (read only when it starts now)
  KEYS[7] the task's paused marker (read only when it starts now, with a task)
  ARGV[1] execution id
  ARGV[2] meta (JSON)
  ARGV[3] ttl (s)
  ARGV[4] '1' when the run belongs to a task
  ARGV[5] its `queued` status event (JSON), '' for none; ARGV[6] the stream's MAXLEN
  ARGV[7] '1' to start it now; ARGV[8] its `running` status event (JSON), '' for none
  ARGV[9 ..] field, value pairs to set with the start
  Returns 1 created (queued), 2 created and started, 3 created queued because it is held,
  0 the agent is revoked (nothing written).
  The `queued` event is written here, with the record: it is first in the stream whatever comes
  next, at no round trip of its own.
]]
-- @include "stream-event"
local record, revoked, agent_index, task_index, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local suspended, paused = KEYS[6], KEYS[7]
local id, meta, ttl, has_task = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
if redis.call('EXISTS', revoked) == 1 then return 0 end
redis.call('HSET', record, 'id', id, 'status', 'queued', 'meta', meta, 'starts', 0)
redis.call('EXPIRE', record, ttl)
redis.call('SADD', agent_index, id)
redis.call('EXPIRE', agent_index, ttl)
if has_task then
  redis.call('SADD', task_index, id)
  redis.call('EXPIRE', task_index, ttl)
end
stream_event(stream, ARGV[6], ttl, 'status', ARGV[5])
if ARGV[7] ~= '1' then return 1 end
if redis.call('EXISTS', suspended) == 1 then return 3 end
if has_task and redis.call('EXISTS', paused) == 1 then return 3 end
redis.call('HSET', record, 'status', 'running', 'starts', 1, 'bornRunning', 1)
for j = 9, #ARGV, 2 do redis.call('HSET', record, ARGV[j], ARGV[j + 1]) end
stream_event(stream, ARGV[6], ttl, 'status', ARGV[8])
return 2
