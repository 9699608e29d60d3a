-- A new admin key of workspace $1 ($2 hash, $3 visible prefix, $4 name, $5 who made it); returns it.
INSERT INTO admin_api_keys (workspace_id, key_hash, prefix, name, created_by) VALUES ($1, $2, $3, $4, $5)
RETURNING id, workspace_id, prefix, name, created_by, created_at, last_used_at
