-- A new, unverified channel $1 of workspace $2, with its test message (its code $7, encrypted)
-- queued. Returns the id.
WITH made AS (
    INSERT INTO notification_channels (id, workspace_id, name, type, config_encrypted, target_hint,
                                       verification_code_encrypted, verification_expires_at, created_by)
    VALUES ($1, $2, $3, $4, $5, $6, $7, now() + interval '1 day', $8)
    RETURNING id, workspace_id
)
INSERT INTO alert_notifications (workspace_id, channel_id, action, verification_code_encrypted)
SELECT workspace_id, id, 'verify', $7 FROM made
RETURNING channel_id
