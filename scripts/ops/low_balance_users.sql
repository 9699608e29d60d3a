-- Users with under 10 purchased credits, enterprise excepted (seed 003).
-- Variables: none
SELECT
  u.user_id,
  u.balance,
  u.tier,
  c.credits_used AS credits_used_this_month,
  u.monthly_allowance
FROM user_credits u
CROSS JOIN LATERAL ledger_user_cycle(u, now()) c
WHERE u.balance < 10
  AND u.tier != 'enterprise'
ORDER BY u.balance ASC;
