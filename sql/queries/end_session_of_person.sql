-- Ends person $1's live session $2 with reason $3; returns its id (no row: not theirs, or ended).
UPDATE sessions SET revoked_at = now(), revoked_reason = $3
 WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL
RETURNING id
