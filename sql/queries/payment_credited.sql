-- Marks a pending purchase paid, with the transaction ($2) that credited it; once.
UPDATE stripe_payments SET status = 'paid', transaction_id = $2, paid_at = coalesce(paid_at, now()),
                           updated_at = now()
 WHERE payment_intent_id = $1 AND status = 'pending'
