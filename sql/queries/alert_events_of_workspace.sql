-- The alert events of workspace $1, newest first: all, or only 'open' or 'resolved' ($2); at most $3.
SELECT e.id, e.rule_id, r.name AS rule_name, r.condition_type, e.trigger_value, e.threshold_value, e.message,
       e.severity, e.notifications_sent, e.notifications_failed, e.triggered_at, e.acknowledged_at,
       e.acknowledged_by, e.resolved_at, e.resolved_by, e.resolution_note
  FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id
 WHERE e.workspace_id = $1
   AND ($2::text IS NULL OR ($2 = 'open') = (e.resolved_at IS NULL))
 ORDER BY e.triggered_at DESC, e.id
 LIMIT $3
