--[[
  The expiry timer, or a reader that finds an approval due: expires it and its action. The
  caller then takes it off the global pending list (a separate key, in another cluster slot).

  KEYS[1] approval record
  KEYS[2] action record
  ARGV[1] the actions' done channel
  ARGV[2] expired at (ISO)
  ARGV[3] outcome of an expired action (JSON)
  Returns 1 when it expired the approval now, else 0.
]]
-- @include "now"
-- @include "expire-approval-if-due"
if expire_approval_if_due(KEYS[1], KEYS[2], ARGV[1], now_ms(), ARGV[3], ARGV[2]) then return 1 end
return 0
