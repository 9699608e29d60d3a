-- A user's balance, tier, power level and how much of the monthly allowance is used (seed 003).
-- Variables: user_id (uuid)
SELECT
  user_id,
  balance,
  tier,
  power_level,
  monthly_allowance,
  credits_used_this_month,
  ROUND((credits_used_this_month::numeric / NULLIF(monthly_allowance, 0)) * 100, 2) as usage_percent
FROM user_credits
WHERE user_id = :'user_id';
