-- Whether budget $2 is workspace $1's.
SELECT EXISTS (SELECT 1 FROM budgets WHERE workspace_id = $1 AND id = $2)
