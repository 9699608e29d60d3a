-- The alert rules of workspace $1, oldest first.
SELECT id, workspace_id, name, description, condition_type, threshold, window_seconds, min_requests,
       condition_config::text AS condition_config, severity, cooldown_secs, channel_ids, is_active,
       last_triggered_at, triggered_count, last_value, last_evaluated_at, created_at
  FROM alert_rules WHERE workspace_id = $1 ORDER BY created_at, id LIMIT 100
