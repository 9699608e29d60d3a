-- A purchase by its payment intent, locked for the rest of the transaction.
SELECT * FROM stripe_payments WHERE payment_intent_id = $1 FOR UPDATE
