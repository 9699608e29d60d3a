-- A new alert rule of workspace $1. Returns the id.
INSERT INTO alert_rules (workspace_id, name, description, condition_type, threshold, window_seconds, min_requests,
                         condition_config, severity, cooldown_secs, channel_ids, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12)
RETURNING id
