-- Deletes budget $2 of workspace $1 (its history and alerts with it); its id, or no row.
DELETE FROM budgets WHERE workspace_id = $1 AND id = $2 RETURNING id
