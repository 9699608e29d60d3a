-- Turns the just-created wallet $1 into a team workspace named $2; returns the workspace row.
UPDATE workspaces SET kind = 'team', name = $2 WHERE id = $1 RETURNING id, name, kind, created_at
