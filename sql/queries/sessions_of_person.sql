-- Person $1's live sessions, most recently active first.
SELECT id, workspace_id, device, host(ip) AS ip, created_at, last_active_at, expires_at
  FROM sessions
 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() AND NOT mfa_pending
 ORDER BY last_active_at DESC, id
