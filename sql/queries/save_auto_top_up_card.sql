-- The card (payment method $2) of Stripe customer $3 that wallet $1 saved for auto top-up.
INSERT INTO auto_top_up_settings AS s (user_id, payment_method_id, stripe_customer_id)
VALUES ($1, $2, $3)
ON CONFLICT (user_id) DO UPDATE
   SET payment_method_id = excluded.payment_method_id, stripe_customer_id = excluded.stripe_customer_id,
       updated_at = now()
