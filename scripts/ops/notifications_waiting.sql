-- Webhook messages and emails not yet delivered, by event type, with the oldest one's age: a
-- growing backlog means the worker is off (LEDGER_NOTIFY_INTERVAL_SECONDS) or endpoints are down.
-- Variables: none
SELECT 'webhook' AS channel, e.event_type, count(*) AS waiting, min(m.created_at) AS oldest,
       max(m.attempts) AS most_attempts
FROM webhook_messages m JOIN notification_events e ON e.id = m.event_id
WHERE m.status = 'pending'
GROUP BY e.event_type
UNION ALL
SELECT 'email', e.event_type, count(*), min(n.created_at), max(n.attempts)
FROM notification_emails n JOIN notification_events e ON e.id = n.event_id
WHERE n.status = 'pending'
GROUP BY e.event_type
ORDER BY oldest;
