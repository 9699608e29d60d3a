-- Workspace $1: id, name, kind, created_at; no row when unknown.
SELECT id, name, kind, created_at FROM workspaces WHERE id = $1
