-- Credits used per UTC day and model across all users, the last 30 days (today, a partial day,
-- included): the operator's usage chart. A day or model with no request has no row (the chart
-- fills the zeros). day is a date (UTC).
-- Variables: none
SELECT
  (created_at AT TIME ZONE 'UTC')::date AS day,
  model,
  count(*) AS requests,
  sum(credits_used) AS credits,
  sum(cost_usd) AS cost_usd
FROM llm_usage_log
WHERE created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '29 days') AT TIME ZONE 'UTC'
GROUP BY 1, model
ORDER BY day, credits DESC, model;
