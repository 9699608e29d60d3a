-- How many of the channel ids $2 are channels of workspace $1.
SELECT count(*) FROM notification_channels WHERE workspace_id = $1 AND id = ANY ($2::uuid[])
