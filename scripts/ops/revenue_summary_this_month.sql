-- Seed 003's revenue estimate for this month, kept as the seed gives it (it multiplies credits by
-- a package price); revenue_by_package has the amounts Stripe actually charged. The month is
-- UTC's, whatever the session's TimeZone.
-- Variables: none
SELECT
  COUNT(*) as purchases,
  SUM(amount) as total_credits_sold,
  SUM(amount * (SELECT price_usd FROM credit_packages WHERE credits = amount LIMIT 1)) as estimated_revenue
FROM credit_transactions
WHERE transaction_type = 'purchase'
  AND created_at >= date_trunc('month', now(), 'UTC');
