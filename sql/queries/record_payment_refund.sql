-- A purchase's refunded cents ($2), charge ($3) and status: refunded when $4 (all of it), else
-- partially_refunded; a purchase under review stays under review.
UPDATE stripe_payments SET refunded_cents = $2, charge_id = $3, updated_at = now(),
                           status = CASE WHEN status = 'review' THEN 'review'
                                         WHEN $4 THEN 'refunded' ELSE 'partially_refunded' END
 WHERE payment_intent_id = $1
