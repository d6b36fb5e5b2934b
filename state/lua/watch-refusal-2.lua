--[[
  A refusal (403, 402, 429) of one agent: probing is a burst of them.

  KEYS[1] the agent's refusals window
  KEYS[2] the agent's watch state (hash: since)
  ARGV[1] a unique member for this refusal, ARGV[2] refusals that make a burst, ARGV[3] window ms
  Returns {'ok'} | {'ok', 'probing|count'}.
]]
-- @include "now"
-- @include "window"
local since = tonumber(redis.call('HGET', KEYS[2], 'since') or '0')
local count = window_count(KEYS[1], ARGV[1], now_ms(), tonumber(ARGV[3]), since)
if count >= tonumber(ARGV[2]) then return {'ok', 'probing|' .. count} end
return {'ok'}
