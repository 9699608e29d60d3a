-- Credits spent and provider cost per power level, last 24 hours and last 30 days.
-- Variables: none
SELECT
  coalesce(power_level, '(none)') AS power_level,
  count(*) FILTER (WHERE created_at > now() - interval '24 hours') AS requests_24h,
  coalesce(sum(credits_used) FILTER (WHERE created_at > now() - interval '24 hours'), 0) AS credits_24h,
  coalesce(sum(cost_usd) FILTER (WHERE created_at > now() - interval '24 hours'), 0) AS cost_usd_24h,
  count(*) AS requests_30d,
  sum(credits_used) AS credits_30d,
  sum(cost_usd) AS cost_usd_30d
FROM llm_usage_log
WHERE created_at > now() - interval '30 days'
GROUP BY power_level
ORDER BY credits_30d DESC, power_level;
