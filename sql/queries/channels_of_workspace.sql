-- The notification channels of workspace $1 (never their targets), oldest first.
SELECT id, workspace_id, name, type, target_hint, is_verified, verified_at, is_active, last_sent_at, failure_count,
       last_failure_at, last_failure_reason, created_at
  FROM notification_channels WHERE workspace_id = $1 ORDER BY created_at, id LIMIT 100
