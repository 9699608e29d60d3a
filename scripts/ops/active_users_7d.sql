-- How many users made an LLM request in the last 7 days (seed 003).
-- Variables: none
SELECT COUNT(DISTINCT user_id)
FROM llm_usage_log
WHERE created_at > NOW() - INTERVAL '7 days';
