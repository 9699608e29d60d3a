-- Stripe took top-up $1's PaymentIntent ($2): it waits for the signed webhook (unless that came first).
UPDATE auto_top_ups SET status = 'processing', payment_intent_id = $2, updated_at = now()
 WHERE id = $1 AND status = 'pending'
