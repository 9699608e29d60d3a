-- Users with under 10 purchased credits, enterprise excepted (seed 003).
-- Variables: none
SELECT
  user_id,
  balance,
  tier,
  credits_used_this_month,
  monthly_allowance
FROM user_credits
WHERE balance < 10
  AND tier != 'enterprise'
ORDER BY balance ASC;
