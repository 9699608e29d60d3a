-- Weekly maintenance: VACUUM ANALYZE the busiest tables (seed 003).
-- Variables: none
VACUUM ANALYZE user_credits;
VACUUM ANALYZE credit_transactions;
VACUUM ANALYZE llm_usage_log;
