// Lua for actions and their approvals. A decision, an expiry and the runner's use of an approval
// each move the approval and its action together, atomically, on Redis's clock: an approval is
// decided once, used once, and never after it expired.

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// An approval past its time expires, and so does its action (fail closed).
// Needs: KEYS[1] approval, KEYS[2] action, KEYS[3] pending set, KEYS[4] done channel; ARGV[9] outcome.
const EXPIRE_IF_DUE = `
local function expire_if_due(now, outcome, finished_at)
  if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return false end
  if now < tonumber(redis.call('HGET', KEYS[1], 'expiresAtMs')) then return false end
  redis.call('HSET', KEYS[1], 'status', 'expired', 'decidedAt', finished_at)
  redis.call('ZREM', KEYS[3], redis.call('HGET', KEYS[1], 'id'))
  if redis.call('HGET', KEYS[2], 'status') == 'awaiting_approval' then
    redis.call('HSET', KEYS[2], 'status', 'expired', 'outcome', outcome, 'finishedAt', finished_at)
    redis.call('PUBLISH', KEYS[4], redis.call('HGET', KEYS[2], 'id') .. ' expired')
  end
  return true
end
`;

// Creates an action (and its pending approval) unless the agent is revoked.
// KEYS: action, revoked marker, agent index, [approval, pending set].
// ARGV: id, status, meta, ttl, [approval id, approval data, approval ttl ms, agent id].
export const CREATE_ACTION = `${NOW}
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', ARGV[2], 'meta', ARGV[3], 'starts', 0)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[4])
if #KEYS == 5 then
  local expires = now + tonumber(ARGV[7])
  redis.call('HSET', KEYS[1], 'approvalId', ARGV[5])
  redis.call('HSET', KEYS[4], 'id', ARGV[5], 'actionId', ARGV[1], 'agentId', ARGV[8], 'status', 'pending',
    'data', ARGV[6], 'expiresAtMs', expires)
  redis.call('EXPIRE', KEYS[4], ARGV[4])
  redis.call('ZADD', KEYS[5], expires, ARGV[5])
  return expires
end
return 1
`;

// A human's decision. KEYS: approval, action, pending set, done channel.
// ARGV: decision, decider id, reason, decided at (ISO), approve-fields..., see store.
// Returns {verdict, detail}: ok | missing | expired | decided <status> | self | action <status>.
export const DECIDE = `${NOW}${EXPIRE_IF_DUE}
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'missing', ''} end
if expire_if_due(now, ARGV[6], ARGV[4]) then return {'expired', ''} end
if st ~= 'pending' then return {'decided', st} end
if redis.call('HGET', KEYS[1], 'agentId') == ARGV[2] then return {'self', ''} end
local act = redis.call('HGET', KEYS[2], 'status')
if act ~= 'awaiting_approval' then return {'action', act or 'missing'} end
redis.call('ZREM', KEYS[3], redis.call('HGET', KEYS[1], 'id'))
if ARGV[1] == 'approve' then
  redis.call('HSET', KEYS[1], 'status', 'approved', 'decidedBy', ARGV[2], 'reason', ARGV[3], 'decidedAt', ARGV[4])
  redis.call('HSET', KEYS[2], 'status', 'queued')
else
  redis.call('HSET', KEYS[1], 'status', 'denied', 'decidedBy', ARGV[2], 'reason', ARGV[3], 'decidedAt', ARGV[4])
  redis.call('HSET', KEYS[2], 'status', 'denied', 'outcome', ARGV[5], 'finishedAt', ARGV[4])
  redis.call('PUBLISH', KEYS[4], redis.call('HGET', KEYS[2], 'id') .. ' denied')
end
return {'ok', ''}
`;

// The expiry timer (or a reader that finds it due). KEYS: approval, action, pending set, channel.
// ARGV: 1-5 unused, 6 outcome, 4 finished at. Returns 1 when it expired the approval now.
export const EXPIRE = `${NOW}${EXPIRE_IF_DUE}
if expire_if_due(now, ARGV[6], ARGV[4]) then return 1 end
return 0
`;

// The runner uses an approval once, for exactly the action and arguments it was given for.
// KEYS: approval. ARGV: action id, args hash. Returns 1 when used now.
export const CONSUME = `
if redis.call('HGET', KEYS[1], 'status') ~= 'approved' then return 0 end
if redis.call('HGET', KEYS[1], 'actionId') ~= ARGV[1] then return 0 end
local data = cjson.decode(redis.call('HGET', KEYS[1], 'data'))
if data.argsHash ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'used')
return 1
`;
