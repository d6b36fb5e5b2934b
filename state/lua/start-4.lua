--[[
  queued → running for a record (an execution or an action), in one call with the watch's holds:
  work of a suspended agent or of a paused task does not start (it stays queued and waits), and
  no hold can land between the check and the start.

  KEYS[1] record
  KEYS[2] the agent's suspended marker
  KEYS[3] the task's paused marker (any key without a task: it is not read)
  KEYS[4] the record's event stream
  ARGV[1] ttl (s)
  ARGV[2] '1' when the work belongs to a task
  ARGV[3] its `running` status event (JSON), '' for none; ARGV[4] the stream's MAXLEN
  ARGV[5 ..] field, value pairs to set with the move
  Returns 1 started, 2 held, 0 refused (not queued), -1 no such record.
]]
-- @include "stream-event"
local record, suspended, paused, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cur = redis.call('HGET', record, 'status')
if not cur then return -1 end
if cur ~= 'queued' then return 0 end
if redis.call('EXISTS', suspended) == 1 then return 2 end
if ARGV[2] == '1' and redis.call('EXISTS', paused) == 1 then return 2 end
redis.call('HSET', record, 'status', 'running')
for j = 5, #ARGV, 2 do redis.call('HSET', record, ARGV[j], ARGV[j + 1]) end
redis.call('HINCRBY', record, 'starts', 1)
redis.call('EXPIRE', record, ARGV[1])
stream_event(stream, ARGV[4], ARGV[1], 'status', ARGV[3])
return 1
