--[[
  The result side of the watch: one call per finished run or tool call. Counts the same
  non-empty result coming back again (a loop even when the arguments vary) and the egress
  refusals of a tool call (probing).

  KEYS[1] the window of this agent and this result
  KEYS[2] the agent's refusals window
  KEYS[3] the agent's watch state (hash: since)
  ARGV[1] work id
  ARGV[2] '1' to count the result (it is not empty), ARGV[3] result repeats, ARGV[4] window ms
  ARGV[5] egress refusals in this call, ARGV[6] probing: enabled '1', ARGV[7] refusals, ARGV[8] window ms
  Returns {'ok', trigger...}.
]]
-- @include "now"
-- @include "window"
local result_key, refusals, state = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
local since = tonumber(redis.call('HGET', state, 'since') or '0')
local triggers = {}
if ARGV[2] == '1' then
  local count = window_count(result_key, ARGV[1], now, tonumber(ARGV[4]), since)
  if count >= tonumber(ARGV[3]) then table.insert(triggers, 'loop|' .. count .. '|result') end
end
local refused = tonumber(ARGV[5])
if ARGV[6] == '1' and refused > 0 then
  local count = 0
  for i = 1, refused do count = window_count(refusals, ARGV[1] .. ':' .. i, now, tonumber(ARGV[8]), since) end
  if count >= tonumber(ARGV[7]) then table.insert(triggers, 'probing|' .. count) end
end
return {'ok', unpack(triggers)}
