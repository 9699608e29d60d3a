-- Failed LLM requests of the last 7 days by error and provider, most frequent first.
-- Variables: none
SELECT
  coalesce(provider, '(none)') AS provider,
  status_code,
  coalesce(error_message, '(no message)') AS error,
  count(*) AS failures,
  sum(credits_used) AS credits_charged,
  max(created_at) AS last_seen
FROM llm_usage_log
WHERE NOT success
  AND created_at > now() - interval '7 days'
GROUP BY provider, status_code, error_message
ORDER BY failures DESC, last_seen DESC;
