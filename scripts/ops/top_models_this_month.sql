-- The 10 most requested models this month, a UTC month (seed 003).
-- Variables: none
SELECT
  model,
  COUNT(*) as requests,
  SUM(total_tokens) as total_tokens,
  SUM(credits_used) as total_credits,
  AVG(latency_ms) as avg_latency
FROM llm_usage_log
WHERE created_at >= date_trunc('month', now(), 'UTC')
GROUP BY model
ORDER BY requests DESC
LIMIT 10;
