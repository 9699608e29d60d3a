-- The subscription shown with user $1's balance: the one that gives their tier (status one of $2,
-- the paid statuses), else the latest updated; no row: none.
SELECT s.subscription_id AS id, s.tier, s.status, s.current_period_start, s.current_period_end
  FROM stripe_subscriptions s JOIN user_credits u USING (user_id)
 WHERE s.user_id = $1
 ORDER BY (s.tier = u.tier AND s.status = ANY($2::text[])) DESC, s.updated_at DESC
 LIMIT 1
