-- How many webhooks workspace $1 has.
SELECT count(*) FROM webhooks WHERE workspace_id = $1
