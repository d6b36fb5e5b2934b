--[[
  The one status transition of a record (an execution or an action): it moves the record only
  when its current status is one of the allowed "from" statuses, so a cancel racing a finish, or
  a job handed out twice, can never move a record twice. A final status is published on the
  record kind's done channel as "<id> <status>" (a channel is no key: it is an argument, so the
  script's only key is the record's, in its agent's cluster slot).

  KEYS[1] record
  ARGV[1] done channel
  ARGV[2] to status
  ARGV[3] ttl (s)
  ARGV[4] "1": return the record as it is after a move (its end, read in the same call)
  ARGV[5] n: how many "from" statuses follow
  ARGV[6 .. 5+n] from statuses
  ARGV[6+n ..] field, value pairs to set with the move
  Returns 1 moved (with read: {1, HGETALL of the record}), 0 refused (not in a from status),
  -1 no such record.
]]
local record = KEYS[1]
local done_channel, to, ttl, read, nfrom = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', tonumber(ARGV[5])
local cur = redis.call('HGET', record, 'status')
if not cur then return -1 end
for i = 6, 5 + nfrom do
  if ARGV[i] == cur then
    redis.call('HSET', record, 'status', to)
    for j = 6 + nfrom, #ARGV, 2 do redis.call('HSET', record, ARGV[j], ARGV[j + 1]) end
    if to == 'running' then redis.call('HINCRBY', record, 'starts', 1) end
    redis.call('EXPIRE', record, ttl)
    if to ~= 'running' and to ~= 'queued' then
      redis.call('PUBLISH', done_channel, redis.call('HGET', record, 'id') .. ' ' .. to)
    end
    if read then return { 1, redis.call('HGETALL', record) } end
    return 1
  end
end
return 0
