-- One budget of workspace $1 by its id $2, as it stands now; no row for another workspace's.
SELECT * FROM budgets_now WHERE workspace_id = $1 AND id = $2
