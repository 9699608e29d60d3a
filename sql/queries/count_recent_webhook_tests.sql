-- How many webhook.test events webhook $2 of workspace $1 was sent in the last hour.
SELECT count(*) FROM notification_events
 WHERE workspace_id = $1 AND event_type = 'webhook.test' AND data ->> 'webhook_id' = $2::text
   AND created_at > now() - interval '1 hour'
