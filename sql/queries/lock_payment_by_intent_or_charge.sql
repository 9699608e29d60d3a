-- The purchase a refund or dispute is about, by its payment intent ($1) or charge ($2), locked for
-- the rest of the transaction (after its user's row: the order every money writer follows).
SELECT * FROM stripe_payments WHERE payment_intent_id = $1 OR ($2::text IS NOT NULL AND charge_id = $2) FOR UPDATE
