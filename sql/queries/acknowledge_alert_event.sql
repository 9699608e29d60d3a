-- Person $3 acknowledges open alert event $2 of workspace $1 (once). Returns the id, or nothing.
UPDATE alert_events SET acknowledged_at = now(), acknowledged_by = $3
 WHERE workspace_id = $1 AND id = $2 AND acknowledged_at IS NULL AND resolved_at IS NULL
RETURNING id
