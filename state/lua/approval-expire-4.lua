--[[
  The expiry timer, or a reader that finds an approval due: expires it and its action.

  KEYS[1] approval record
  KEYS[2] action record
  KEYS[3] pending approvals
  KEYS[4] the actions' done channel
  ARGV[1] expired at (ISO)
  ARGV[2] outcome of an expired action (JSON)
  Returns 1 when it expired the approval now, else 0.
]]
-- @include "now"
-- @include "expire-approval-if-due"
if expire_approval_if_due(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now_ms(), ARGV[2], ARGV[1]) then return 1 end
return 0
