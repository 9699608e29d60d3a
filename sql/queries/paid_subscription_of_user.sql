-- User $1's newest subscription whose status is one of $2 (the paid statuses): one Stripe bills
-- every month; no row: none.
SELECT subscription_id AS id, tier, status
  FROM stripe_subscriptions
 WHERE user_id = $1 AND status = ANY($2::text[])
 ORDER BY updated_at DESC
 LIMIT 1
