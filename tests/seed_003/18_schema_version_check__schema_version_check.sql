-- seed 003, "Schema Version Check", verbatim.
SELECT * FROM schema_version ORDER BY applied_at DESC LIMIT 1;
