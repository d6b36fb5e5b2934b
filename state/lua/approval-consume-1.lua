--[[
  The runner uses an approval once, for exactly the action and the arguments it was given for.

  KEYS[1] approval record
  ARGV[1] action id
  ARGV[2] SHA-256 of the canonical arguments about to be sent
  Returns 1 when used now, else 0.
]]
local approval = KEYS[1]
local action_id, args_hash = ARGV[1], ARGV[2]
if redis.call('HGET', approval, 'status') ~= 'approved' then return 0 end
if redis.call('HGET', approval, 'actionId') ~= action_id then return 0 end
local data = cjson.decode(redis.call('HGET', approval, 'data'))
if data.argsHash ~= args_hash then return 0 end
redis.call('HSET', approval, 'status', 'used')
return 1
