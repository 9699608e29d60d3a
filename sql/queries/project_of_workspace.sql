-- Project $2 of workspace $1; no row when it is unknown or another workspace's.
SELECT id, workspace_id, name, is_default, created_at, archived_at FROM projects WHERE workspace_id = $1 AND id = $2
