-- seed 003, "Maintenance Commands" / "Vacuum Tables (Weekly)", verbatim.
VACUUM ANALYZE user_credits;
VACUUM ANALYZE credit_transactions;
VACUUM ANALYZE llm_usage_log;
