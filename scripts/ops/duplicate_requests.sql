-- Request ids logged more than once (a unique index forbids it, so this returns no rows) (seed 003).
-- Variables: none
SELECT request_id, COUNT(*)
FROM llm_usage_log
GROUP BY request_id
HAVING COUNT(*) > 1;
