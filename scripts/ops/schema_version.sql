-- The last migration applied (seed 003).
-- Variables: none
SELECT * FROM schema_version ORDER BY applied_at DESC LIMIT 1;
