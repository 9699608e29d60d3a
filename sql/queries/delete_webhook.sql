-- Deletes webhook $2 of workspace $1 with its messages and delivery log. Returns the id, or nothing.
DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2 RETURNING id
