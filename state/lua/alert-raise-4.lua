--[[
  Raises an alert, deduplicated per agent and detector while one is open, and applies its
  response at once (so the very next request of the agent, on any process, meets it). The
  global lists (all alerts, open alerts) are the caller's, in their own commands after this: they
  are in other cluster slots.

  KEYS[1] the open alert of this agent and detector (string: alert id)
  KEYS[2] the new alert's record (hash)
  KEYS[3] the agent's alerts (sorted by time)
  KEYS[4] the marker the response sets (suspended agent, paused task, throttle), or with ARGV[6]
          0 any key of the agent's slot (it is left alone)
  ARGV[1] alert id
  ARGV[2] now (ms)
  ARGV[3] the alert (JSON fields, see state/alerts.ts)
  ARGV[4] the audit ids that led to it (JSON array)
  ARGV[5] the marker's value (JSON: alert id, by, at)
  ARGV[6] '1' to set the marker, ARGV[7] its ttl in s (0: until a human lifts it)
  ARGV[8] record ttl (s)
  Returns {'raised', id} | {'deduped', id of the open alert}.
]]
local open_key, record, of_agent, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, now, fields, audit_ids, marker_value, set_marker, marker_ttl, ttl =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6] == '1', tonumber(ARGV[7]), ARGV[8]

if set_marker then
  if marker_ttl > 0 then redis.call('SET', marker, marker_value, 'EX', marker_ttl)
  else redis.call('SET', marker, marker_value) end
end

local open = redis.call('GET', open_key)
if open and redis.call('EXISTS', open) == 1 then
  redis.call('HINCRBY', open, 'count', 1)
  redis.call('HSET', open, 'lastSeenAtMs', now, 'lastAuditIds', audit_ids)
  return {'deduped', redis.call('HGET', open, 'id')}
end
redis.call('HSET', record, 'id', id, 'fields', fields, 'auditIds', audit_ids, 'status', 'open', 'count', 1, 'raisedAtMs', now, 'lastSeenAtMs', now)
redis.call('EXPIRE', record, ttl)
redis.call('SET', open_key, record, 'EX', ttl)
redis.call('ZADD', of_agent, now, id)
return {'raised', id}
