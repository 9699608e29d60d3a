-- Size on disk of the ledger's main tables, indexes included (seed 003).
-- Variables: none
SELECT
  schemaname,
  tablename,
  pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) AS size
FROM pg_tables
WHERE tablename IN ('user_credits', 'credit_transactions', 'llm_usage_log',
                    'user_provider_keys', 'credit_packages', 'power_level_configs')
ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC;
