-- Adds to a purchase's running totals the credits a refund or lost dispute took back ($2) and
-- what of them was already spent ($3).
UPDATE stripe_payments
   SET credits_refunded = credits_refunded + $2, refund_shortfall = refund_shortfall + $3, updated_at = now()
 WHERE payment_intent_id = $1
