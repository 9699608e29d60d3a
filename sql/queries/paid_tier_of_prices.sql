-- The dearest paid tier sold at one of the Stripe prices $1; no row: none of them is a tier's.
SELECT tier FROM subscription_tiers
 WHERE stripe_price_id = ANY($1::text[]) AND tier <> 'trial'
 ORDER BY price_usd DESC
 LIMIT 1
