-- A user's LLM usage per model over the last 24 hours (seed 003).
-- Variables: user_id (uuid)
SELECT
  model,
  COUNT(*) as request_count,
  SUM(total_tokens) as total_tokens,
  SUM(credits_used) as total_credits,
  AVG(latency_ms) as avg_latency_ms,
  SUM(CASE WHEN success THEN 1 ELSE 0 END)::float / COUNT(*) * 100 as success_rate
FROM llm_usage_log
WHERE user_id = :'user_id'
  AND created_at > NOW() - INTERVAL '24 hours'
GROUP BY model
ORDER BY total_credits DESC;
