--[[
  Creates an action that waits for a human, with its pending approval, unless the agent is
  revoked. The approval expires on Redis's clock. (The global pending list is written by the
  caller, in its own command: it is in another cluster slot.)

  KEYS[1] action record
  KEYS[2] the agent's revoked marker
  KEYS[3] the agent's actions index
  KEYS[4] approval record
  ARGV[1] action id
  ARGV[2] meta (JSON)
  ARGV[3] ttl (s)
  ARGV[4] approval id
  ARGV[5] approval data (JSON)
  ARGV[6] approval ttl (ms)
  ARGV[7] agent id
  Returns the approval's expiry (ms), or 0 when the agent is revoked.
]]
-- @include "now"
local action, revoked, agent_index, approval = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, meta, ttl = ARGV[1], ARGV[2], ARGV[3]
local approval_id, data, approval_ttl_ms, agent_id = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
if redis.call('EXISTS', revoked) == 1 then return 0 end
local expires = now_ms() + approval_ttl_ms
redis.call('HSET', action, 'id', id, 'status', 'awaiting_approval', 'meta', meta, 'starts', 0, 'approvalId', approval_id)
redis.call('EXPIRE', action, ttl)
redis.call('SADD', agent_index, id)
redis.call('EXPIRE', agent_index, ttl)
redis.call('HSET', approval, 'id', approval_id, 'actionId', id, 'agentId', agent_id, 'status', 'pending', 'data', data, 'expiresAtMs', expires)
redis.call('EXPIRE', approval, ttl)
return expires
