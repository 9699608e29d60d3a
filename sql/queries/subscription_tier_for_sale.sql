-- A subscription tier on sale, with what a Checkout Session needs; no row when it is not on sale.
SELECT tier, display_name, price_usd, stripe_price_id FROM subscription_tiers WHERE tier = $1 AND is_active
