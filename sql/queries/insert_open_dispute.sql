-- Records a new dispute, open, with the credits it disputes and the hold (if any) keeping them.
INSERT INTO stripe_disputes (dispute_id, payment_intent_id, user_id, amount_cents, credits, hold_id, credits_held)
VALUES ($1, $2, $3, $4, $5, $6, $7)
