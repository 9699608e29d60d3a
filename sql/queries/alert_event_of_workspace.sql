-- Alert event $2 of workspace $1, if it is open.
SELECT id FROM alert_events WHERE workspace_id = $1 AND id = $2 AND resolved_at IS NULL
