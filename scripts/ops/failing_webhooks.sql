-- Webhooks failing now or disabled, with their streak, their last error and what waits for them.
-- Variables: none
SELECT
  w.name AS workspace,
  h.name AS webhook,
  h.url,
  CASE WHEN h.disabled_at IS NOT NULL THEN 'disabled' WHEN NOT h.is_active THEN 'off' ELSE 'failing' END AS state,
  h.consecutive_failures,
  h.failing_since,
  h.last_failure_reason,
  (SELECT count(*) FROM webhook_messages m WHERE m.webhook_id = h.id AND m.status = 'pending') AS waiting,
  (SELECT count(*) FROM webhook_messages m WHERE m.webhook_id = h.id AND m.status = 'failed') AS failed_for_good
FROM webhooks h
JOIN workspaces w ON w.id = h.workspace_id
WHERE h.consecutive_failures > 0 OR h.disabled_at IS NOT NULL
ORDER BY h.disabled_at IS NULL, h.consecutive_failures DESC, h.failing_since
LIMIT 100;
