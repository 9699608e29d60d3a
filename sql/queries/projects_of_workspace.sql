-- Workspace $1's projects (archived ones only when $2), ordered by creation, cursor after id $3, at most $4.
SELECT id, workspace_id, name, is_default, created_at, archived_at
  FROM projects
 WHERE workspace_id = $1 AND ($2 OR archived_at IS NULL)
   AND ($3::uuid IS NULL OR (created_at, id) > (SELECT p.created_at, p.id FROM projects p WHERE p.id = $3))
 ORDER BY created_at, id
 LIMIT $4
