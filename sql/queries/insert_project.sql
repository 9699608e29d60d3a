-- A new project $2 in workspace $1; returns it.
INSERT INTO projects (workspace_id, name) VALUES ($1, $2)
RETURNING id, workspace_id, name, is_default, created_at, archived_at
