-- Moves live session $1 to workspace $2.
UPDATE sessions SET workspace_id = $2 WHERE id = $1 AND revoked_at IS NULL
