-- Sends again, now, the message of delivery attempt $3 of webhook $2 of workspace $1, whatever its
-- state (one more attempt; failed again if it fails). Returns the message id, or nothing.
UPDATE webhook_messages m
   SET status = 'pending', next_attempt_at = now(), delivered_at = NULL
  FROM webhook_deliveries d
 WHERE d.id = $3 AND d.webhook_id = $2 AND d.workspace_id = $1 AND m.id = d.message_id
RETURNING m.id
