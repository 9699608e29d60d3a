-- The payment intent that already paid Checkout Session $1, when it is not $2; no row otherwise.
SELECT payment_intent_id FROM stripe_payments WHERE checkout_session_id = $1 AND payment_intent_id <> $2
