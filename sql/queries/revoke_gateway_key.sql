-- Revokes an active gateway key; no row when there is no such active key.
UPDATE gateway_api_keys SET is_active = false, revoked_at = now() WHERE id = $1 AND is_active RETURNING id
