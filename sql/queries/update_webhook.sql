-- Changes webhook $2 of workspace $1 (NULL: kept; $8 true clears the project filter). Enabling it
-- ($9 true) clears a disablement and its streak of failures, so its waiting messages go out again.
-- Returns the id, or nothing for another workspace's webhook.
UPDATE webhooks
   SET name = coalesce($3, name), description = coalesce($4, description), url = coalesce($5, url),
       events = coalesce($6, events),
       filter_project_ids = CASE WHEN $8 THEN NULL ELSE coalesce($7, filter_project_ids) END,
       timeout_ms = coalesce($10, timeout_ms),
       is_active = coalesce($9, is_active),
       disabled_at = CASE WHEN $9 THEN NULL ELSE disabled_at END,
       disabled_reason = CASE WHEN $9 THEN NULL ELSE disabled_reason END,
       consecutive_failures = CASE WHEN $9 THEN 0 ELSE consecutive_failures END,
       failing_since = CASE WHEN $9 THEN NULL ELSE failing_since END,
       updated_at = now()
 WHERE workspace_id = $1 AND id = $2
RETURNING id
