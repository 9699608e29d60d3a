-- The better of tiers $1 and $2: unlimited allowance first, then the larger allowance, then the
-- dearer (the order best_paid_tier_of_user uses), then by name.
SELECT t.tier FROM subscription_tiers t
 WHERE t.tier IN ($1, $2)
 ORDER BY t.monthly_allowance IS NULL DESC, t.monthly_allowance DESC, t.price_usd DESC, t.tier
 LIMIT 1
