-- Records a checkout's payment once per payment intent; a redelivery changes nothing.
INSERT INTO stripe_payments (payment_intent_id, checkout_session_id, user_id, package_id, credits,
                             amount_cents, currency, status, review_reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (payment_intent_id) DO NOTHING
