-- How many budgets and rate limits workspace $1 has (each request checks every one on its path).
SELECT (SELECT count(*) FROM budgets WHERE workspace_id = $1) AS budgets,
       (SELECT count(*) FROM rate_limits WHERE workspace_id = $1) AS rate_limits
