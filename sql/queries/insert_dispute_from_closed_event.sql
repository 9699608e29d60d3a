-- Records a dispute whose closing arrived before its creation: open (the closing then closes it),
-- holding nothing; a dispute recorded already is left as it is.
INSERT INTO stripe_disputes (dispute_id, payment_intent_id, user_id, amount_cents, credits, status, closed_at)
VALUES ($1, $2, $3, $4, $5, 'open', now())
ON CONFLICT (dispute_id) DO NOTHING
