-- Claims at most $1 due emails for one attempt each, leased for $2 seconds like the webhook
-- messages. Returns what each email says: its event and its workspace's name.
WITH due AS (
    SELECT id FROM notification_emails
     WHERE status = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE notification_emails n
       SET next_attempt_at = now() + make_interval(secs => $2), attempts = n.attempts + 1
      FROM due
     WHERE n.id = due.id
    RETURNING n.id, n.attempts, n.event_id, n.to_email, n.workspace_id
)
SELECT c.id, c.attempts, c.to_email, e.event_type, e.data::text AS data, e.created_at AS event_at,
       coalesce(ws.name, 'your workspace') AS workspace_name
  FROM claimed c
  JOIN notification_events e ON e.id = c.event_id
  LEFT JOIN workspaces ws ON ws.id = c.workspace_id
