-- Invitation $2 of workspace $1; no row when unknown or another workspace's.
SELECT id, workspace_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at
  FROM workspace_invitations WHERE workspace_id = $1 AND id = $2
