-- The credits of wallet $1 by lot, in spending order: its grants with credits left (lowest
-- priority number, then earliest expiry, then oldest), then its purchased part.
SELECT user_id, lot, grant_id, kind, priority, expires_at, amount, remaining
  FROM credit_lots
 WHERE user_id = $1
 ORDER BY lot = 'purchased', priority, expires_at NULLS LAST, grant_id
