-- The grants of wallet $1, open and spent and expired, newest first, at most $2.
SELECT id, kind, amount, remaining, priority, expires_at, expired_at, created_at
  FROM credit_grants
 WHERE user_id = $1
 ORDER BY id DESC
 LIMIT $2
