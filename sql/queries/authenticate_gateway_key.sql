-- The owner of an active, unexpired gateway key (by its SHA-256): key id, user id, power level,
-- whether its workspace is a personal one; no
-- row for an unknown, revoked or expired key. Touches last_used_at at most once a minute, so a
-- burst of requests on one key does not queue on that key's row. (A metered request does this in
-- begin_llm_request instead, joined with its hold.)
WITH k AS (
    SELECT id, user_id, last_used_at FROM gateway_api_keys
     WHERE key_hash = $1 AND is_active AND (expires_at IS NULL OR expires_at > now())
), touched AS (
    UPDATE gateway_api_keys g SET last_used_at = now()
      FROM k
     WHERE g.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
)
SELECT k.id, k.user_id, u.power_level, w.kind = 'personal' AS personal
  FROM k JOIN user_credits u USING (user_id) JOIN workspaces w ON w.id = k.user_id
