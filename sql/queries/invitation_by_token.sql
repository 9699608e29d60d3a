-- The pending, unexpired invitation whose token hashes to $1, locked for its acceptance, with its
-- workspace's name; no row otherwise.
SELECT i.id, i.workspace_id, i.email, i.role, w.name AS workspace_name, i.expires_at
  FROM workspace_invitations i JOIN workspaces w ON w.id = i.workspace_id
 WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
   FOR UPDATE OF i
