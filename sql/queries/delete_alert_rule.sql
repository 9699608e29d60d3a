-- Deletes alert rule $2 of workspace $1 with its events. Returns the id, or nothing.
DELETE FROM alert_rules WHERE workspace_id = $1 AND id = $2 RETURNING id
