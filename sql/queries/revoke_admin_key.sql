-- Revokes live admin key $2 of workspace $1; returns its id (no row: unknown, another's or revoked).
UPDATE admin_api_keys SET revoked_at = now() WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING id
