--[[
  Creates a queued action unless the agent is revoked.

  KEYS[1] action record
  KEYS[2] the agent's revoked marker
  KEYS[3] the agent's actions index
  ARGV[1] action id
  ARGV[2] meta (JSON)
  ARGV[3] ttl (s)
  Returns 1 created, 0 the agent is revoked.
]]
local action, revoked, agent_index = KEYS[1], KEYS[2], KEYS[3]
local id, meta, ttl = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', revoked) == 1 then return 0 end
redis.call('HSET', action, 'id', id, 'status', 'queued', 'meta', meta, 'starts', 0)
redis.call('EXPIRE', action, ttl)
redis.call('SADD', agent_index, id)
redis.call('EXPIRE', agent_index, ttl)
return 1
