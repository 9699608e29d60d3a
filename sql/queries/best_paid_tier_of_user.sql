-- The best tier among user $1's subscriptions whose status is one of $2 (the paid statuses):
-- unlimited allowance first, then the larger allowance, then the dearer (the order
-- better_of_two_tiers uses); no row: none.
SELECT s.tier FROM stripe_subscriptions s JOIN subscription_tiers t ON t.tier = s.tier
 WHERE s.user_id = $1 AND s.status = ANY($2::text[])
 ORDER BY t.monthly_allowance IS NULL DESC, t.monthly_allowance DESC, t.price_usd DESC
 LIMIT 1
