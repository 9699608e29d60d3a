-- Budgets at 80% or more of their amount in their current period (spent and held), nearest first.
-- Variables: none
SELECT
  w.name AS workspace,
  b.scope_type || ' ' || b.scope_id AS scope,
  coalesce(b.model_pattern, 'any') AS model,
  b.period,
  CASE WHEN b.hard THEN 'hard' ELSE 'soft' END AS kind,
  b.amount,
  b.spent,
  b.held,
  b.remaining,
  round(100 * (b.spent + b.held) / b.amount, 1) AS percent_used,
  b.resets_at
FROM budgets_now b
JOIN workspaces w ON w.id = b.workspace_id
WHERE b.spent + b.held >= 0.8 * b.amount
ORDER BY (b.spent + b.held) / b.amount DESC, b.id;
