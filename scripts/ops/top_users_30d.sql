-- The 20 users who used the most credits in the last 30 days, with their account and requests.
-- credits_used and cost_usd are the metered requests' (llm_usage_log), failed ones included.
-- Variables: none
SELECT
  u.user_id,
  u.email,
  u.tier,
  u.balance,
  l.requests,
  l.credits_used,
  l.cost_usd,
  l.last_request_at
FROM (
  SELECT
    user_id,
    count(*) AS requests,
    sum(credits_used) AS credits_used,
    sum(cost_usd) AS cost_usd,
    max(created_at) AS last_request_at
  FROM llm_usage_log
  WHERE created_at > now() - interval '30 days'
  GROUP BY user_id
) l
JOIN user_credits u ON u.user_id = l.user_id
ORDER BY l.credits_used DESC, l.requests DESC, u.user_id
LIMIT 20;
