--[[
  queued → running for a record (an execution or an action), in one call with the watch's holds:
  work of a suspended agent or of a paused task does not start (it stays queued and waits), and
  no hold can land between the check and the start.

  KEYS[1] record
  KEYS[2] the agent's suspended marker
  KEYS[3] the task's paused marker (any key without a task: it is not read)
  ARGV[1] ttl (s)
  ARGV[2] '1' when the work belongs to a task
  ARGV[3 ..] field, value pairs to set with the move
  Returns 1 started, 2 held, 0 refused (not queued), -1 no such record.
]]
local record, suspended, paused = KEYS[1], KEYS[2], KEYS[3]
local cur = redis.call('HGET', record, 'status')
if not cur then return -1 end
if cur ~= 'queued' then return 0 end
if redis.call('EXISTS', suspended) == 1 then return 2 end
if ARGV[2] == '1' and redis.call('EXISTS', paused) == 1 then return 2 end
redis.call('HSET', record, 'status', 'running')
for j = 3, #ARGV, 2 do redis.call('HSET', record, ARGV[j], ARGV[j + 1]) end
redis.call('HINCRBY', record, 'starts', 1)
redis.call('EXPIRE', record, ARGV[1])
return 1
