-- A new test message for channel $2 of workspace $1, with code $4 (hash $3, good for a day).
-- Returns the channel's id, or nothing.
WITH changed AS (
    UPDATE notification_channels
       SET verification_code_hash = CASE WHEN is_verified THEN NULL ELSE $3 END,
           verification_expires_at = CASE WHEN is_verified THEN NULL ELSE now() + interval '1 day' END,
           verification_failures = 0,
           updated_at = now()
     WHERE workspace_id = $1 AND id = $2
    RETURNING id, workspace_id
)
INSERT INTO alert_notifications (workspace_id, channel_id, action, verification_code)
SELECT workspace_id, id, 'verify', $4 FROM changed
RETURNING channel_id
