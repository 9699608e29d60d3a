-- A new budget of workspace $1 (the scope trigger refuses a scope outside it: LG032).
-- Returns the id: the caller reads the row back (a statement does not see its own insert).
INSERT INTO budgets (workspace_id, scope_type, scope_id, model_pattern, amount, period, hard, alert_thresholds,
                     created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id
