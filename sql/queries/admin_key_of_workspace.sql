-- Live admin key $2 of workspace $1; no row when unknown, revoked or another workspace's.
SELECT id, workspace_id, prefix, name, created_by, created_at, last_used_at
  FROM admin_api_keys
 WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL
