-- Channel $2 of workspace $1 (never its target), or nothing.
SELECT id, workspace_id, name, type, target_hint, is_verified, verified_at, is_active, last_sent_at, failure_count,
       last_failure_at, last_failure_reason, created_at
  FROM notification_channels WHERE workspace_id = $1 AND id = $2
