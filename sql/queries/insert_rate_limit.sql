-- A new rate limit of workspace $1 (the scope trigger refuses a scope outside it: LG032).
-- Returns the id: the caller reads the row back (a statement does not see its own insert).
INSERT INTO rate_limits (workspace_id, scope_type, scope_id, model_pattern, preset, strategy, requests,
                         window_seconds, tokens_per_minute, max_concurrent, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING id
