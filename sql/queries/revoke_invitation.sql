-- Revokes pending invitation $2 of workspace $1; returns it (no row: unknown, another's, accepted or revoked).
UPDATE workspace_invitations SET revoked_at = now()
 WHERE workspace_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL
RETURNING id, workspace_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at
