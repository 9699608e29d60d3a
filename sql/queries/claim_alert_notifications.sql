-- Claims at most $1 due channel messages for one attempt each, leased for $2 seconds like the
-- webhook messages. Returns what each needs: the channel (its config still encrypted), the event
-- and its rule, the workspace's name.
WITH due AS (
    SELECT id FROM alert_notifications
     WHERE status = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE alert_notifications n
       SET next_attempt_at = now() + make_interval(secs => $2), attempts = n.attempts + 1
      FROM due
     WHERE n.id = due.id
    RETURNING n.*
)
SELECT c.id, c.action, c.attempts, c.verification_code_encrypted, c.alert_event_id, c.event_id, c.channel_id,
       ch.name AS channel_name, ch.type AS channel_type, ch.config_encrypted, ch.is_active,
       coalesce(ws.name, 'your workspace') AS workspace_name,
       e.message, e.severity, e.trigger_value, e.threshold_value, e.triggered_at, e.resolved_at, e.resolution_note,
       r.name AS rule_name, r.condition_type, ne.event_type, ne.data::text AS event_data
  FROM claimed c
  JOIN notification_channels ch ON ch.id = c.channel_id
  LEFT JOIN workspaces ws ON ws.id = c.workspace_id
  LEFT JOIN alert_events e ON e.id = c.alert_event_id
  LEFT JOIN alert_rules r ON r.id = e.rule_id
  LEFT JOIN notification_events ne ON ne.id = c.event_id
