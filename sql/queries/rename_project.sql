-- Renames live project $2 of workspace $1 to $3; returns it (no row: unknown, another's or archived).
UPDATE projects SET name = $3 WHERE workspace_id = $1 AND id = $2 AND archived_at IS NULL
RETURNING id, workspace_id, name, is_default, created_at, archived_at
