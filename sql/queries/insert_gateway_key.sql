-- Stores a new gateway key's hash for a user ($1 user, $2 hash, $3 visible prefix, $4 name,
-- $5 expiry) and returns its id; no row: unknown user.
INSERT INTO gateway_api_keys (user_id, key_hash, prefix, name, expires_at)
SELECT user_id, $2, $3, $4, $5 FROM user_credits WHERE user_id = $1
RETURNING id
