-- Ends every live session of person $1 but $3 (NULL: all), with reason $2; returns how many.
WITH ended AS (
    UPDATE sessions SET revoked_at = now(), revoked_reason = $2
     WHERE user_id = $1 AND revoked_at IS NULL AND ($3::uuid IS NULL OR id <> $3)
    RETURNING 1
)
SELECT count(*) FROM ended
