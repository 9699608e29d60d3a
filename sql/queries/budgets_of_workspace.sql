-- The budgets of workspace $1 as they stand now, oldest first, after the id $2 (NULL: from the
-- first), at most $3.
SELECT * FROM budgets_now
 WHERE workspace_id = $1 AND ($2::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM budgets WHERE id = $2))
 ORDER BY created_at, id
 LIMIT $3
