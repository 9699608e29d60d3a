-- The workspaces person $1 is a member of, with their role, oldest membership first.
SELECT w.id, w.name, w.kind, m.role, w.created_at
  FROM workspace_members m JOIN workspaces w ON w.id = m.workspace_id
 WHERE m.user_id = $1
 ORDER BY m.created_at, w.id
