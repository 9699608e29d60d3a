-- Keeps a pending purchase for a human's review, with the reason ($2); credits nothing.
UPDATE stripe_payments SET status = 'review', review_reason = $2, updated_at = now()
 WHERE payment_intent_id = $1
