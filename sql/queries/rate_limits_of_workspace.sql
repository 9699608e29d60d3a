-- The rate limits of workspace $1 with their effective numbers, oldest first, after the id $2
-- (NULL: from the first), at most $3.
SELECT * FROM rate_limits_effective
 WHERE workspace_id = $1
   AND ($2::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM rate_limits WHERE id = $2))
 ORDER BY created_at, id
 LIMIT $3
