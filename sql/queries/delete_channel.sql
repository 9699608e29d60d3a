-- Deletes channel $2 of workspace $1 (its queued messages with it). Returns the id, or nothing.
DELETE FROM notification_channels WHERE workspace_id = $1 AND id = $2 RETURNING id
