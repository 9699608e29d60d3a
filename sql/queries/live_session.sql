-- The live session whose token hashes to $1, with its person: no row when unknown, ended or expired.
-- Touches last_active_at at most once a minute.
WITH s AS (
    SELECT s.id, s.user_id, s.workspace_id, s.mfa_pending, s.last_active_at, s.expires_at, u.email
      FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
), touched AS (
    UPDATE sessions t SET last_active_at = now()
      FROM s WHERE t.id = s.id AND s.last_active_at < now() - interval '1 minute'
)
SELECT id, user_id, workspace_id, mfa_pending, expires_at, email FROM s
