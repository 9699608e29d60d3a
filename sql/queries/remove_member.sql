-- Removes person $2 from workspace $1; returns their id (no row: not a member).
DELETE FROM workspace_members WHERE workspace_id = $1 AND user_id = $2 RETURNING user_id
