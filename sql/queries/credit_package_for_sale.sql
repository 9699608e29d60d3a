-- A credit package on sale, with what a Checkout Session needs; no row when it is not on sale.
SELECT id, name, credits, price_usd, stripe_price_id FROM credit_packages WHERE id = $1 AND is_active
