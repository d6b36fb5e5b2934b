// The one status transition of a record (an execution or an action), as a Lua script: it moves
// the record only when its current status is one of the allowed "from" statuses, so a cancel
// racing a finish, or a job handed out twice, can never move a record twice. Final statuses are
// published on the record kind's done channel.
// KEYS: record, done channel. ARGV: to, ttl, n, from_1..from_n, field, value, ...
export const TRANSITION = `
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return -1 end
local nfrom = tonumber(ARGV[3])
for i = 4, 3 + nfrom do
  if ARGV[i] == cur then
    redis.call('HSET', KEYS[1], 'status', ARGV[1])
    for j = 4 + nfrom, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 1]) end
    if ARGV[1] == 'running' then redis.call('HINCRBY', KEYS[1], 'starts', 1) end
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    if ARGV[1] ~= 'running' and ARGV[1] ~= 'queued' then
      redis.call('PUBLISH', KEYS[2], redis.call('HGET', KEYS[1], 'id') .. ' ' .. ARGV[1])
    end
    return 1
  end
end
return 0
`;

