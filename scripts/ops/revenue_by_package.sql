-- This (UTC) month's revenue per credit package and currency, from what Stripe actually charged and
-- refunded (stripe_payments, in the currency's minor unit), with the credits sold and taken back.
-- Purchases under review (not credited) are left out; stripe_payments_review lists them.
-- Variables: none
SELECT
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
  AND s.paid_at >= date_trunc('month', now(), 'UTC')
GROUP BY p.name, p.sort_order, s.currency
ORDER BY p.sort_order NULLS LAST, s.currency;
