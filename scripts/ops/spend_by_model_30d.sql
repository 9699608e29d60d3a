-- Credits spent and provider cost per model, last 24 hours and last 30 days (spend_by_provider's
-- columns, per model).
-- Variables: none
SELECT
  model,
  count(*) FILTER (WHERE created_at > now() - interval '24 hours') AS requests_24h,
  coalesce(sum(credits_used) FILTER (WHERE created_at > now() - interval '24 hours'), 0) AS credits_24h,
  coalesce(sum(cost_usd) FILTER (WHERE created_at > now() - interval '24 hours'), 0) AS cost_usd_24h,
  count(*) AS requests_30d,
  sum(credits_used) AS credits_30d,
  sum(cost_usd) AS cost_usd_30d
FROM llm_usage_log
WHERE created_at > now() - interval '30 days'
GROUP BY model
ORDER BY credits_30d DESC, model;
