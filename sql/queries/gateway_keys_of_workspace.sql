-- Workspace $1's gateway keys, active and revoked, newest first (never their hashes), with the
-- project each is in and the person who made it: what its dashboard's keys page shows.
SELECT id, prefix, name, is_active, expires_at, created_at, last_used_at, revoked_at, project_id, created_by
  FROM gateway_api_keys
 WHERE user_id = $1
 ORDER BY created_at DESC, id
