--[[
  Admission's last step: the execution record is created only while the agent is not revoked,
  in one step, so no request admitted after a revocation can slip in between a check and the
  write. The id joins the agent's index and, with a task, the task's.

  KEYS[1] execution record
  KEYS[2] the agent's revoked marker
  KEYS[3] the agent's executions index
  KEYS[4] the task's executions index (written only with a task)
  KEYS[5] the execution's event stream
  ARGV[1] execution id
  ARGV[2] meta (JSON)
  ARGV[3] ttl (s)
  ARGV[4] '1' when the run belongs to a task
  ARGV[5] its `queued` status event (JSON), '' for none; ARGV[6] the stream's MAXLEN
  Returns 1 created, 0 the agent is revoked.
  The `queued` event is written here, with the record: it is first in the stream whatever comes
  next, at no round trip of its own.
]]
-- @include "stream-event"
local record, revoked, agent_index, task_index, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
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
return 1
