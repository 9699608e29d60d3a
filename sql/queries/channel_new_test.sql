-- A new test message for channel $2 of workspace $1 with its code $3 (encrypted), good for a day,
-- unless $4 test messages were sent to it in the last day already (a channel's target is not
-- anyone's to flood, verified or not). Returns the channel's id, or nothing.
WITH changed AS (
    UPDATE notification_channels c
       SET verification_code_encrypted = CASE WHEN c.is_verified THEN NULL ELSE $3::bytea END,
           verification_expires_at = CASE WHEN c.is_verified THEN NULL ELSE now() + interval '1 day' END,
           verification_failures = 0,
           updated_at = now()
     WHERE c.workspace_id = $1 AND c.id = $2
       AND (SELECT count(*) FROM alert_notifications n
             WHERE n.channel_id = c.id AND n.action = 'verify' AND n.created_at > now() - interval '1 day') < $4
    RETURNING c.id, c.workspace_id
)
INSERT INTO alert_notifications (workspace_id, channel_id, action, verification_code_encrypted)
SELECT workspace_id, id, 'verify', $3 FROM changed
RETURNING channel_id
