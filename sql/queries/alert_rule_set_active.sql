-- Turns alert rule $2 of workspace $1 on or off ($3). Returns the id, or nothing.
UPDATE alert_rules SET is_active = $3, updated_at = now() WHERE workspace_id = $1 AND id = $2 RETURNING id
