-- Uses the unexpired, unused token hashing to $1 for purpose $2 (once); returns its person's id.
UPDATE user_tokens SET used_at = now()
 WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
RETURNING user_id
