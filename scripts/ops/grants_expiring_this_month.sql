-- Granted credits that expire before the end of this UTC month with credits left: who loses how
-- much, and whether they were told (credits.expiring).
-- Variables: none
SELECT
  coalesce(w.name, u.email, u.user_id::text) AS wallet,
  g.id AS grant_id,
  g.kind,
  g.priority,
  g.expires_at,
  g.remaining,
  g.amount,
  g.expiring_told_at IS NOT NULL AS told
FROM credit_grants g
JOIN user_credits u ON u.user_id = g.user_id
LEFT JOIN workspaces w ON w.id = g.user_id
WHERE g.remaining > 0
  AND g.expires_at < (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
ORDER BY g.expires_at, g.id
LIMIT 500;
