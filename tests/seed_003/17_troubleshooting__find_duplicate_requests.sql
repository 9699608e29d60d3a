-- seed 003, "Troubleshooting" / "Find Duplicate Requests", verbatim.
SELECT request_id, COUNT(*)
FROM llm_usage_log
GROUP BY request_id
HAVING COUNT(*) > 1;
