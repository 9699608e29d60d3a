-- A user's balance, tier, power level and how much of this cycle's allowance is used (seed 003), with what is left and when it resets.
-- Variables: user_id (uuid)
SELECT
  u.user_id,
  u.balance,
  u.tier,
  u.power_level,
  u.monthly_allowance,
  c.credits_used AS credits_used_this_month,
  ROUND((c.credits_used::numeric / NULLIF(u.monthly_allowance, 0)) * 100, 2) as usage_percent,
  c.allowance_remaining,
  c.cycle_end AS allowance_resets_at
FROM user_credits u
CROSS JOIN LATERAL ledger_user_cycle(u, now()) c
WHERE u.user_id = :'user_id';
