-- Revokes the active gateway keys person $2 made in workspace $1 (they were removed from it);
-- returns how many.
WITH revoked AS (
    UPDATE gateway_api_keys SET is_active = false, revoked_at = now()
     WHERE user_id = $1 AND created_by = $2 AND is_active
    RETURNING 1
)
SELECT count(*) FROM revoked
