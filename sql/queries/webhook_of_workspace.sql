-- Webhook $2 of workspace $1 (never its secrets), or nothing.
SELECT id, workspace_id, name, description, url, events, filter_project_ids, timeout_ms, is_active,
       last_triggered_at, consecutive_failures, failing_since, last_failure_at, last_failure_reason,
       disabled_at, disabled_reason, previous_secret_expires_at, created_by, created_at, updated_at
  FROM webhooks
 WHERE workspace_id = $1 AND id = $2
