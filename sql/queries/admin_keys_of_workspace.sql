-- Workspace $1's live admin keys, oldest first, cursor after key $2, at most $3.
SELECT id, workspace_id, prefix, name, created_by, created_at, last_used_at
  FROM admin_api_keys
 WHERE workspace_id = $1 AND revoked_at IS NULL
   AND ($2::uuid IS NULL OR (created_at, id) > (SELECT a.created_at, a.id FROM admin_api_keys a WHERE a.id = $2))
 ORDER BY created_at, id
 LIMIT $3
