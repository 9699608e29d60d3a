-- How many notification channels workspace $1 has.
SELECT count(*) FROM notification_channels WHERE workspace_id = $1
