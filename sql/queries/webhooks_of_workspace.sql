-- The webhooks of workspace $1 (never their secrets), oldest first, after the id $2 (NULL: from
-- the first), at most $3.
SELECT id, workspace_id, name, description, url, events, filter_project_ids, timeout_ms, is_active,
       last_triggered_at, consecutive_failures, failing_since, last_failure_at, last_failure_reason,
       disabled_at, disabled_reason, previous_secret_expires_at, created_by, created_at, updated_at
  FROM webhooks
 WHERE workspace_id = $1 AND ($2::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM webhooks WHERE id = $2))
 ORDER BY created_at, id
 LIMIT $3
