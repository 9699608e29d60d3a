-- Replaces the numbers of rate limit $2 of workspace $1 (its scope and model stay). The state
-- is kept: a changed limit judges the requests already counted by its new numbers.
-- Returns the id: the caller reads the row back (a statement does not see its own insert).
UPDATE rate_limits
   SET preset = $3, strategy = $4, requests = $5, window_seconds = $6, tokens_per_minute = $7,
       max_concurrent = $8, updated_at = now()
 WHERE workspace_id = $1 AND id = $2
RETURNING id
