-- Ends person $2's live sessions that are in workspace $1 (they were removed from it), with reason $3.
UPDATE sessions SET revoked_at = now(), revoked_reason = $3
 WHERE user_id = $2 AND workspace_id = $1 AND revoked_at IS NULL
