-- A new invitation to workspace $1 for email $2 with role $3 ($4 token hash, $5 who invited, $6 expiry).
INSERT INTO workspace_invitations (workspace_id, email, role, token_hash, invited_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, workspace_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at
