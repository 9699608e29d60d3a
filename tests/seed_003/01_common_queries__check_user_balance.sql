-- seed 003, "Common Queries" / "Check User Balance", verbatim.
SELECT
  user_id,
  balance,
  tier,
  power_level,
  monthly_allowance,
  credits_used_this_month,
  ROUND((credits_used_this_month::numeric / NULLIF(monthly_allowance, 0)) * 100, 2) as usage_percent
FROM user_credits
WHERE user_id = 'USER_UUID';
