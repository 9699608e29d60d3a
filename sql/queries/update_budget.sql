-- Changes budget $2 of workspace $1: its amount, hardness and alert thresholds (NULL: kept). Its
-- scope, model and period stay: spend already counted belongs to them.
-- Returns the id: the caller reads the row back (a statement does not see its own insert).
UPDATE budgets
   SET amount = coalesce($3, amount), hard = coalesce($4, hard),
       alert_thresholds = coalesce($5, alert_thresholds), updated_at = now()
 WHERE workspace_id = $1 AND id = $2
RETURNING id
