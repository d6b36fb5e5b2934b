-- stream_event: appends one event to a record's event stream (state/event-streams.ts writes the
-- same shape: fields e and d, capped, expiring with the record); nothing when `body` is ''.
local function stream_event(stream, maxlen, ttl, event, body)
  if body == '' then return end
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', event, 'd', body)
  redis.call('EXPIRE', stream, ttl)
end
