-- Records what this service sold in a Checkout Session (sql 0011) and returns true; no row when
-- the session id is recorded already.
INSERT INTO stripe_checkout_sessions (session_id, user_id, package_id, credits, price_cents, currency)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (session_id) DO NOTHING
RETURNING true
