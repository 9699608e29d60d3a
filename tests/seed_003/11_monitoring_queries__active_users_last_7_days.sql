-- seed 003, "Monitoring Queries" / "Active Users (Last 7 Days)", verbatim.
SELECT COUNT(DISTINCT user_id)
FROM llm_usage_log
WHERE created_at > NOW() - INTERVAL '7 days';
