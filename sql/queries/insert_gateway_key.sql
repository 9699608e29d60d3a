-- Stores a new gateway key's hash for a user ($1 user, $2 hash, $3 visible prefix, $4 name,
-- $5 expiry, $6 project or NULL for the workspace's default one, $7 the person who made it or NULL)
-- and returns its id; no row: unknown user.
INSERT INTO gateway_api_keys (user_id, key_hash, prefix, name, expires_at, project_id, created_by)
SELECT user_id, $2, $3, $4, $5, $6, $7 FROM user_credits WHERE user_id = $1
RETURNING id
