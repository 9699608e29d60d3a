-- Workspace $1's invitations, newest first, cursor: older than invitation $2, at most $3.
SELECT id, workspace_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at
  FROM workspace_invitations
 WHERE workspace_id = $1
   AND ($2::uuid IS NULL OR (created_at, id) < (SELECT i.created_at, i.id FROM workspace_invitations i WHERE i.id = $2))
 ORDER BY created_at DESC, id DESC
 LIMIT $3
