--[[
  A human handles an alert: open → acknowledged → resolved, never back. Resolving closes it, so
  the next firing of its detector raises a new one. The caller takes a resolved alert off the
  global open list (another cluster slot).

  KEYS[1] the alert's record
  KEYS[2] the open alert of its agent and detector
  ARGV[1] 'acknowledged' | 'resolved', ARGV[2] by, ARGV[3] reason, ARGV[4] at (ISO)
  Returns {'ok', previous status} | {'missing'} | {'refused', current status}.
]]
local record, open_key = KEYS[1], KEYS[2]
local to, by, reason, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status = redis.call('HGET', record, 'status')
if not status then return {'missing'} end
if status == 'resolved' or status == to then return {'refused', status} end
if to == 'acknowledged' then
  redis.call('HSET', record, 'status', to, 'acknowledgedBy', by, 'acknowledgedAt', at, 'reason', reason)
else
  redis.call('HSET', record, 'status', to, 'resolvedBy', by, 'resolvedAt', at, 'reason', reason)
  if redis.call('GET', open_key) == record then redis.call('DEL', open_key) end
end
return {'ok', status}
