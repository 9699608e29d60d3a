-- A purchase by its payment intent.
SELECT * FROM stripe_payments WHERE payment_intent_id = $1
