-- The operator's dashboard and the ops queries read the last 24 hours, 7 days or 30 days of every
-- user's requests (spend by model, provider and power level, failed requests, credits per day, top
-- users): without an index on the time alone each of them read the whole usage log, so a view cost
-- a full scan per figure (scripts/bench/dashboard_queries.py: about 130 ms each on 1 million rows).
-- A gateway with a long history can build it first without blocking writes, under this name:
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_llm_usage_log_created_at ON llm_usage_log (created_at);
CREATE INDEX IF NOT EXISTS idx_llm_usage_log_created_at ON llm_usage_log (created_at);
