-- Sends again, now, the message of delivery attempt $3 of webhook $2 of workspace $1: one more
-- attempt (failed again if it fails), unless the message is waiting already or was replayed $4
-- times. Returns the message id, or nothing.
UPDATE webhook_messages m
   SET status = 'pending', next_attempt_at = now(), delivered_at = NULL, replays = m.replays + 1
  FROM webhook_deliveries d
 WHERE d.id = $3 AND d.webhook_id = $2 AND d.workspace_id = $1 AND m.id = d.message_id
   AND m.status <> 'pending' AND m.replays < $4
RETURNING m.id
