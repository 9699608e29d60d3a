-- Revokes gateway key $1 when it is user $2's and still active; no row otherwise (another user's
-- key and an already revoked one answer alike, so a caller cannot learn which ids exist).
UPDATE gateway_api_keys SET is_active = false, revoked_at = now()
 WHERE id = $1 AND user_id = $2 AND is_active
RETURNING id
