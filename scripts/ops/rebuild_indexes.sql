-- Rebuild the busiest tables' indexes, if bloated (seed 003).
-- Variables: none
REINDEX TABLE user_credits;
REINDEX TABLE credit_transactions;
REINDEX TABLE llm_usage_log;
