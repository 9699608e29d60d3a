-- Revenue per UTC month, credit package and currency over the last 12 months (this one included),
-- counted exactly as revenue_by_package counts this month's: what Stripe charged and refunded
-- (stripe_payments, in the currency's minor unit), purchases under review left out. A month with
-- no payment has no row (a chart fills the zeros). month is the month's first day (a date, UTC).
-- Variables: none
SELECT
  (date_trunc('month', s.paid_at AT TIME ZONE 'UTC'))::date AS month,
  coalesce(p.name, '(no package)') AS package,
  s.currency,
  count(*) AS purchases,
  sum(s.amount_cents) AS charged_cents,
  sum(s.refunded_cents) AS refunded_cents,
  sum(s.amount_cents - s.refunded_cents) AS net_cents,
  round(sum(s.amount_cents - s.refunded_cents) / 100.0, 2) AS net_amount,
  sum(s.credits) AS credits_sold,
  sum(s.credits_refunded) AS credits_refunded,
  sum(s.refund_shortfall) AS credits_refund_shortfall
FROM stripe_payments s
LEFT JOIN credit_packages p ON p.id = s.package_id
WHERE s.status NOT IN ('pending', 'review')
  -- month arithmetic on UTC's calendar, whatever the session's TimeZone (a timestamptz minus
  -- months would step through the session's daylight-saving changes)
  AND s.paid_at >= (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '11 months') AT TIME ZONE 'UTC'
GROUP BY 1, p.name, p.sort_order, s.currency
ORDER BY month DESC, p.sort_order NULLS LAST, s.currency;
