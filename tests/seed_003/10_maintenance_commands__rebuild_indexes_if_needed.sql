-- seed 003, "Maintenance Commands" / "Rebuild Indexes (If Needed)", verbatim.
REINDEX TABLE user_credits;
REINDEX TABLE credit_transactions;
REINDEX TABLE llm_usage_log;
