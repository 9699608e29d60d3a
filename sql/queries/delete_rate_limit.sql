-- Deletes rate limit $2 of workspace $1; its id, or no row.
DELETE FROM rate_limits WHERE workspace_id = $1 AND id = $2 RETURNING id
