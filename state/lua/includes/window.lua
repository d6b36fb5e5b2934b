-- window_count: adds `member` to a sorted set of events scored by time, drops what fell out of the
-- window (or happened before `since`, the agent's last resume), and returns how many remain.
local function window_count(key, member, now, window_ms, since)
  local from = math.max(now - window_ms, since)
  redis.call('ZADD', key, now, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. from)
  redis.call('PEXPIRE', key, window_ms + 1000)
  return redis.call('ZCARD', key)
end
