-- Credit holds still open (requests in flight, open disputes) and those past their expiry that no
-- maintenance run has returned yet (state 'overdue'), oldest first.
-- Variables: none
SELECT
  hold_id,
  user_id,
  request_id,
  amount,
  CASE WHEN expires_at <= now() THEN 'overdue' ELSE 'open' END AS state,
  created_at,
  expires_at,
  round(extract(epoch FROM now() - created_at)) AS age_seconds
FROM credit_holds
WHERE status = 'held'
ORDER BY created_at;
