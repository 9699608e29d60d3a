-- The user of the purchase a refund or dispute is about, found by its payment intent ($1) or
-- charge ($2); no row: no such purchase yet.
SELECT user_id FROM stripe_payments WHERE payment_intent_id = $1 OR ($2::text IS NOT NULL AND charge_id = $2)
