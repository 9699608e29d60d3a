-- The cents of a purchase refunded so far ($2; Stripe's amount_refunded is cumulative).
UPDATE stripe_payments SET refunded_cents = $2 WHERE payment_intent_id = $1
