-- Workspaces, newest first, at most $1: name, kind, balance, how many members and live projects.
SELECT w.id, w.name, w.kind, w.created_at, u.balance,
       (SELECT count(*) FROM workspace_members m WHERE m.workspace_id = w.id) AS members,
       (SELECT count(*) FROM projects p WHERE p.workspace_id = w.id AND p.archived_at IS NULL) AS projects
  FROM workspaces w JOIN user_credits u ON u.user_id = w.id
 ORDER BY w.created_at DESC, w.id
 LIMIT $1
