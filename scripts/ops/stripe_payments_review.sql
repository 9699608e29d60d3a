-- Stripe payments kept for review: money Stripe took that did not match its package (currency,
-- amount, credits), so nothing was credited. Refund it in Stripe, or credit it by hand.
-- Variables: none
SELECT
  payment_intent_id,
  checkout_session_id,
  user_id,
  package_id,
  amount_cents,
  currency,
  refunded_cents,
  review_reason,
  created_at
FROM stripe_payments
WHERE status = 'review'
ORDER BY created_at;
