-- Claims at most $1 due messages of enabled endpoints for one attempt each: moves each one's
-- next_attempt_at $2 seconds on (a lease: a process that dies mid-attempt leaves the message to be
-- tried again then) and counts the attempt. Returns what the attempt sends, with the secrets still
-- encrypted.
WITH due AS (
    SELECT m.id
      FROM webhook_messages m JOIN webhooks w ON w.id = m.webhook_id
     WHERE m.status = 'pending' AND m.next_attempt_at <= now() AND w.is_active AND w.disabled_at IS NULL
     ORDER BY m.next_attempt_at
     LIMIT $1
       FOR UPDATE OF m SKIP LOCKED
), claimed AS (
    UPDATE webhook_messages m
       SET next_attempt_at = now() + make_interval(secs => $2), attempts = m.attempts + 1
      FROM due
     WHERE m.id = due.id
    RETURNING m.id, m.attempts, m.event_id, m.webhook_id, m.created_at
)
SELECT c.id AS message_id, c.attempts AS attempt, c.created_at AS queued_at, e.id AS event_id, e.event_type,
       e.data::text AS data, e.created_at AS event_at, w.id AS webhook_id, w.url, w.timeout_ms,
       w.secret_encrypted, w.previous_secret_encrypted, w.previous_secret_expires_at > now() AS previous_signs
  FROM claimed c
  JOIN notification_events e ON e.id = c.event_id
  JOIN webhooks w ON w.id = c.webhook_id
