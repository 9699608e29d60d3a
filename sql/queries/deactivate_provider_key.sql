-- Deactivates one of the owner's own active BYOK keys ($1 key, $2 owner); no row when there is
-- none (also when the key is someone else's).
UPDATE user_provider_keys SET is_active = false, is_default = false, updated_at = now()
 WHERE id = $1 AND user_id = $2 AND is_active
RETURNING id
