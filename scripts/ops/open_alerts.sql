-- Alerts open now in every workspace, the oldest first: what fired, since when, whether someone
-- acknowledged it, and how its channel messages fared.
-- Variables: none
SELECT
  w.name AS workspace,
  r.name AS rule,
  r.condition_type,
  e.severity,
  e.triggered_at,
  e.acknowledged_at IS NOT NULL AS acknowledged,
  e.trigger_value,
  e.threshold_value,
  e.notifications_sent,
  e.notifications_failed
FROM alert_events e
JOIN alert_rules r ON r.id = e.rule_id
JOIN workspaces w ON w.id = e.workspace_id
WHERE e.resolved_at IS NULL
ORDER BY e.triggered_at
LIMIT 200;
